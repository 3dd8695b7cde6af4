"""Files a pipeline's ``setup()`` reads: a kept pipeline is set up again when one changes.

``setup()`` loads what a processor's samples need, once per worker: a model
checkpoint, a lookup table, a configuration file. Warm workers (and the calling
process, for the samples it runs itself) keep the set-up pipeline between runs, so
after the user retrains the model or edits the table under the same path they would
go on using the old contents without a word, where the sequential backend, which
sets up at every run, uses the new ones. So while ``setup()`` runs, an audit hook
(PEP 578) notes every file opened for reading (``open``, ``io.open``, ``os.open``, and
through them ``numpy.load``, ``pandas.read_csv``, ``PIL.Image.open``, ``torch.load``)
with its size and modification time (:func:`watched_setup`); before running samples
the holder checks those (:meth:`FileStamps.changed`, a ``stat`` per file) and sets the
pipeline up again if one changed. Files a C library opens by itself (HDF5) raise no
event and are not watched; Python modules are left to ``_codestate`` and ``_reloads``.

A file the pipeline writes itself is no input that changed: in a worker process
(:func:`note_own_writes`) a file opened for writing, or renamed onto, by that process
is not watched any more, so a ``process()`` that appends to a file its ``setup()``
read does not set the pipeline up again (only writes to watched files are noted: a
worker saving a million files keeps no list of them). In the calling process the
user's own writes between runs are exactly the edits to follow, so it notes none
(and checks only when a run starts).

The hook is added once per process, the first time a ``setup()`` is watched, and
only looks at ``open`` and ``os.rename`` events (audit hooks cannot be removed).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["FileStamps", "note_own_writes", "watched_setup"]

_T = TypeVar("_T")
_CODE_SUFFIXES = (".py", ".pyc", ".pyd", ".so")
_local = threading.local()  # .files: the set being filled while a setup() runs here
_hooked: list[bool] = []
_own_writes: list[set[str]] = []  # in a worker: watched files it wrote (see note_own_writes)
_watched: set[str] = set()  # every file a setup() here read: only writes to these are noted


class FileStamps(tuple[tuple[str, int, int], ...]):
    """``(path, mtime_ns, size)`` of the files a ``setup()`` read, as they were then."""

    __slots__ = ()

    def changed(self) -> bool:
        """Whether any of the files was written, replaced or removed since (not by this worker)."""
        written = _own_writes[0] if _own_writes else ()
        for path, mtime, size in self:
            if path in written:
                continue
            try:
                stat = os.stat(path)
            except OSError:
                return True
            if (stat.st_mtime_ns, stat.st_size) != (mtime, size):
                return True
        return False


def note_own_writes() -> None:
    """In a worker process: from now on, files it writes are not inputs that changed."""
    _hook()
    if not _own_writes:
        _own_writes.append(set())


def watched_setup(setup: Callable[[], _T]) -> tuple[_T, FileStamps]:
    """Call ``setup()``; return its result and the files it opened for reading.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as table:
    ...     _ = table.write("1,2,3")
    >>> text, stamps = watched_setup(Path(table.name).read_text)
    >>> text, [path == table.name for path, _, _ in stamps], stamps.changed()
    ('1,2,3', [True], False)
    >>> with open(table.name, "a") as more:
    ...     _ = more.write(",4")
    >>> stamps.changed()
    True
    >>> Path(table.name).unlink()
    """
    _hook()
    outer = getattr(_local, "files", None)
    files: set[str] = set()
    _local.files = files
    try:
        result = setup()
    finally:
        _local.files = outer
        if outer is not None:
            outer |= files  # a setup() within a setup()
    return result, _stamps(files)


def _hook() -> None:
    if not _hooked:
        sys.addaudithook(_note_open)
        _hooked.append(True)


def _note_open(event: str, args: tuple[Any, ...]) -> None:
    if event != "open" and event != "os.rename":
        return
    files = getattr(_local, "files", None)
    if files is None and not _own_writes:
        return
    try:
        if event == "os.rename":  # os.rename and os.replace: src, dst, src_dir_fd, dst_dir_fd
            target = os.path.abspath(os.fsdecode(args[1]))
            if _own_writes and target in _watched:
                _own_writes[0].add(target)
            return
        path, mode, flags = args
        if isinstance(path, int) or path is None:
            return  # a descriptor: nothing to stat later
        if mode is None:
            access = flags & os.O_ACCMODE
            reading, writing = access != os.O_WRONLY, access != os.O_RDONLY
        else:
            reading, writing = "r" in mode or "+" in mode, any(c in mode for c in "wax+")
        name = os.path.abspath(os.fsdecode(path))
        if writing and _own_writes and name in _watched:
            _own_writes[0].add(name)
        if reading and files is not None and not name.endswith(_CODE_SUFFIXES):
            files.add(name)
    except Exception:  # an audit hook must never break the program
        pass


def _stamps(paths: set[str]) -> FileStamps:
    found = []
    for path in sorted(paths):
        try:
            stat = os.stat(path)
        except OSError:
            continue  # opened to probe, or gone already: nothing to compare with
        if not os.path.isdir(path):
            found.append((path, stat.st_mtime_ns, stat.st_size))
            _watched.add(path)
    return FileStamps(found)
