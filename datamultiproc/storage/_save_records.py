"""Which pipeline configuration wrote each file of a Save folder, and when.

A Save keeps the seed's layout, ``<save_to_dir>/<Stage>/<id>.pickle``, and records
beside the files, in ``<Stage>/.configurations/``: ``<configuration>.json`` describes
a configuration (the steps before the Save, digested the way a Cache digests its
upstream steps) and ``<configuration>.log`` gets one line per file written,
``<time_ns> TAB <file name> TAB <id as JSON>``.

Many worker processes append at once: each line goes out in one ``write`` on a
file opened with ``O_APPEND``, which the kernel appends whole (lines stay far
below ``PIPE_BUF``). A line is appended *after* its file is renamed into place, so
a writer killed in between leaves a file attributed to the configuration that
wrote it before (or to none), never a record that claims a file it did not write.
Unparseable lines (a torn write after a power loss) are skipped.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, NamedTuple

from datamultiproc.storage._files import write_json_atomic

__all__ = ["RECORDS", "FileRecord", "append_record", "read_records", "write_description"]

RECORDS = ".configurations"
_LOG = ".log"
_DESCRIPTION = ".json"


class FileRecord(NamedTuple):
    """The last recorded write of one file: configuration, time (ns) and sample id."""

    configuration: str
    written_ns: int
    sample_id: str


def write_description(stage_dir: Path, configuration: str, description: dict[str, Any]) -> None:
    """Write ``<configuration>.json`` once (atomically; an existing one is kept)."""
    path = stage_dir / RECORDS / f"{configuration}{_DESCRIPTION}"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, description)


def append_record(stage_dir: Path, configuration: str, file_name: str, sample_id: str) -> None:
    """Append one line saying ``configuration`` wrote ``file_name`` now."""
    line = f"{time.time_ns()}\t{file_name}\t{json.dumps(sample_id)}\n".encode()
    path = stage_dir / RECORDS / f"{configuration}{_LOG}"
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags, 0o644)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, flags, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def read_records(stage_dir: Path) -> tuple[dict[str, FileRecord], dict[str, dict[str, Any]]]:
    """Return the last record of every file name, and each configuration's description."""
    folder = stage_dir / RECORDS
    latest: dict[str, FileRecord] = {}
    descriptions: dict[str, dict[str, Any]] = {}
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return latest, descriptions
    for entry in entries:
        if entry.name.endswith(_DESCRIPTION):
            descriptions[entry.name[: -len(_DESCRIPTION)]] = _read_json(entry.path)
    for entry in entries:
        if entry.name.endswith(_LOG):
            configuration = entry.name[: -len(_LOG)]
            descriptions.setdefault(configuration, {})
            _read_log(Path(entry.path), configuration, latest)
    return latest, descriptions


def _read_log(path: Path, configuration: str, latest: dict[str, FileRecord]) -> None:
    with open(path, "rb") as handle:
        data = handle.read().decode("utf-8", errors="replace")
    new = tuple.__new__  # skips NamedTuple's Python-level constructor: runs per file
    for line in data.split("\n"):
        parts = line.split("\t", 2)
        if len(parts) != 3:
            continue
        name, quoted = parts[1], parts[2]
        try:
            written = int(parts[0])
            # Most ids need no JSON unescaping: skip the decoder for them.
            plain = len(quoted) > 1 and quoted[0] == quoted[-1] == '"' and "\\" not in quoted
            sample_id = quoted[1:-1] if plain else json.loads(quoted)
        except ValueError:
            continue
        known = latest.get(name)
        if known is None or written >= known[1]:
            latest[name] = new(FileRecord, (configuration, written, str(sample_id)))


def _read_json(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
