"""List what a cache directory holds, and remove configurations that are no longer current."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from datamultiproc.core import Processor, walk
from datamultiproc.storage._cache import MANIFEST, SUFFIX, Cache
from datamultiproc.storage._files import TEMP_PREFIX
from datamultiproc.storage._save import Save
from datamultiproc.storage._save_records import RECORDS
from datamultiproc.storage._saved import SavedFile, saved_files

__all__ = ["CacheConfigRecord", "inspect_cache", "prune"]

_UNVERSIONED = "unversioned"


class CacheConfigRecord(NamedTuple):
    """One configuration folder of a cache directory.

    Attributes
    ----------
    stage
        The cached stage (processor class name).
    configuration
        The configuration digest naming the folder, or ``"unversioned"`` for
        entries written directly in a stage folder (by older versions).
    entries
        Number of cached samples.
    bytes
        Their total size.
    last_written
        Modification time of the newest entry (UTC), or ``None`` if there is none.
    processor
        The wrapped processor and its parameters, from the folder's manifest.
    upstream
        The processors that ran before the Cache, from the manifest.
    key
        ``"id"`` or ``"content"``.
    path
        The configuration folder (for ``"unversioned"``, the stage folder).
    """

    stage: str
    configuration: str
    entries: int
    bytes: int
    last_written: datetime.datetime | None
    processor: str
    upstream: tuple[str, ...]
    key: str
    path: Path


def inspect_cache(cache_dir: str | Path) -> list[CacheConfigRecord]:
    """List the configurations a cache directory holds, sorted by stage and configuration.

    Parameters
    ----------
    cache_dir
        The ``cache_dir`` of one or more :class:`Cache` steps.

    Returns
    -------
    list of CacheConfigRecord
        Plain records; ``pandas.DataFrame(records)`` makes a table of them.

    Examples
    --------
    >>> import tempfile
    >>> inspect_cache(tempfile.mkdtemp())
    []
    """
    root = Path(cache_dir)
    if not root.is_dir():
        return []
    records = []
    for stage_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        records += [_record(folder) for folder in sorted(stage_dir.iterdir()) if folder.is_dir()]
        if any(name.endswith(SUFFIX) for name in os.listdir(stage_dir)):
            records.append(_record(stage_dir, unversioned=True))
    return records


def prune(
    *pipelines: Processor, dry_run: bool = False, temp_age: float = 3600.0
) -> list[CacheConfigRecord]:
    """Remove cached configurations, and saved files, that the given pipelines no longer use.

    For every :class:`Cache` in ``pipelines`` (a Cache, a Compose, or any step
    holding them), every other configuration of the same stage in the same cache
    directory is removed, as are entries of older, unversioned layouts and
    temporary files left by killed writers. Stages no given Cache writes to are
    left alone, so pass every pipeline that shares the directory.

    For every :class:`Save`, in each stage folder of its ``save_to_dir`` where the
    current configuration has written, the files last written by other
    configurations (or unrecorded: older versions) are removed with their records;
    the returned records for them have ``key="save"``.

    Parameters
    ----------
    *pipelines
        The current pipelines (or Cache steps).
    dry_run
        If ``True``, only return what would be removed.
    temp_age
        Temporary ``.tmp-*.part`` files older than this many seconds are removed
        (younger ones may belong to a writer that is still running).

    Returns
    -------
    list of CacheConfigRecord
        The configurations removed (or that would be).
    """
    current: dict[Path, set[str]] = {}
    for cache, upstream in _caches(pipelines):
        folder = Path(cache.cache_dir) / cache.configuration(upstream).folder
        current.setdefault(folder.parent, set()).add(folder.name)
    removed = []
    for stage_dir, keep in current.items():
        for record in inspect_cache(stage_dir.parent):
            if record.configuration == _UNVERSIONED and record.path == stage_dir:
                removed.append(record)
                if not dry_run:
                    _remove_unversioned(stage_dir)
            elif record.path.parent == stage_dir and record.path.name not in keep:
                removed.append(record)
                if not dry_run:
                    shutil.rmtree(record.path, ignore_errors=True)
        if not dry_run:
            _remove_old_temp_files(stage_dir, temp_age)
    for save, upstream in _saves(pipelines):
        removed += _prune_save(Path(save.save_to_dir), save.configuration(upstream), dry_run)
    return removed


def _saves(pipelines: tuple[Processor, ...]) -> Iterator[tuple[Save, tuple[Processor, ...]]]:
    for pipeline in pipelines:  # each pipeline runs on its own: none is upstream of another
        for step, upstream in walk(pipeline):
            if isinstance(step, Save):
                yield step, upstream


def _prune_save(root: Path, current: str, dry_run: bool) -> list[CacheConfigRecord]:
    if not root.is_dir():
        return []
    removed = []
    for stage_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        files, descriptions = saved_files(stage_dir)
        if current not in descriptions:
            continue  # the current configuration never wrote here: not ours to judge
        stale: dict[str, list[SavedFile]] = {}
        for file in files:
            if file.configuration != current:
                stale.setdefault(file.configuration, []).append(file)
        for configuration in sorted(set(stale) | set(descriptions) - {current}):
            group = stale.get(configuration, [])
            removed.append(_save_record(stage_dir, configuration, group, descriptions))
            if not dry_run:
                for file in group:
                    Path(file.path).unlink(missing_ok=True)
                for suffix in (".log", ".json"):
                    (stage_dir / RECORDS / f"{configuration}{suffix}").unlink(missing_ok=True)
    return removed


def _save_record(
    stage_dir: Path,
    configuration: str,
    files: list[SavedFile],
    descriptions: dict[str, dict[str, Any]],
) -> CacheConfigRecord:
    stats = [os.stat(file.path) for file in files if os.path.exists(file.path)]
    newest = max((s.st_mtime for s in stats), default=None)
    description = descriptions.get(configuration, {})
    return CacheConfigRecord(
        stage=stage_dir.name,
        configuration=configuration,
        entries=len(files),
        bytes=sum(s.st_size for s in stats),
        last_written=None
        if newest is None
        else datetime.datetime.fromtimestamp(newest, tz=datetime.timezone.utc),
        processor="Save",
        upstream=tuple(description.get("upstream", ())),
        key="save",
        path=stage_dir,
    )


def _caches(pipelines: tuple[Processor, ...]) -> Iterator[tuple[Cache, tuple[Processor, ...]]]:
    for pipeline in pipelines:  # each pipeline runs on its own: none is upstream of another
        for step, upstream in walk(pipeline):
            if isinstance(step, Cache):
                yield step, upstream


def _record(folder: Path, *, unversioned: bool = False) -> CacheConfigRecord:
    entries = [e for e in os.scandir(folder) if e.name.endswith(SUFFIX) and e.is_file()]
    stats = [e.stat() for e in entries]
    newest = max((s.st_mtime for s in stats), default=None)
    manifest = {} if unversioned else _read_manifest(folder / MANIFEST)
    return CacheConfigRecord(
        stage=str(manifest.get("stage", folder.name if unversioned else folder.parent.name)),
        configuration=_UNVERSIONED if unversioned else folder.name,
        entries=len(entries),
        bytes=sum(s.st_size for s in stats),
        last_written=None
        if newest is None
        else datetime.datetime.fromtimestamp(newest, tz=datetime.timezone.utc),
        processor=" + ".join(manifest.get("processor", [])),
        upstream=tuple(manifest.get("upstream", ())),
        key=str(manifest.get("key", "id")),
        path=folder,
    )


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _remove_unversioned(stage_dir: Path) -> None:
    for entry in os.scandir(stage_dir):
        if entry.name.endswith(SUFFIX) and entry.is_file():
            Path(entry.path).unlink(missing_ok=True)


def _remove_old_temp_files(stage_dir: Path, age: float) -> None:
    cutoff = time.time() - age
    for folder in (stage_dir, *(p for p in stage_dir.iterdir() if p.is_dir())):
        for entry in os.scandir(folder):
            if entry.name.startswith(TEMP_PREFIX) and entry.stat().st_mtime < cutoff:
                Path(entry.path).unlink(missing_ok=True)
