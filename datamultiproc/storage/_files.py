"""Atomic pickle and JSON files: a file appears complete or not at all.

Writers pickle into a unique temporary file in the destination folder and
``os.replace`` it over the final name, so a reader (or another writer, in this or
another process) sees either the old complete file or the new complete file, and a
process killed mid-write leaves only a ``.tmp-*.part`` file that no lookup opens.

Files are not fsync'ed: atomicity against crashes and kills comes from the rename;
durability against power loss is left to the operating system. A cache entry torn
by a power loss fails to unpickle and is recomputed.

A cache entry may end with a 13-byte trailer after the pickle: a marker and the
seconds the entry took to compute. ``pickle.load`` stops at the pickle's end, so
any reader still loads the sample; :func:`read_seconds` reads the trailer alone.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import struct
import tempfile
from pathlib import Path
from typing import IO, Any

from datamultiproc.exceptions import CacheCorruptedError, StorageError
from datamultiproc.storage._classes import NotebookClassPickler, load_with_notebook_classes

__all__ = [
    "TEMP_PREFIX",
    "ClassNotFoundError",
    "make_folder",
    "read_entry",
    "read_pickle",
    "read_seconds",
    "write_json_atomic",
    "write_pickle_atomic",
]

TEMP_PREFIX = ".tmp-"
_SMALL_FILE = 1 << 16  # files up to this size are read in one call
_BUFFER = 1 << 13  # larger ones through a buffer of this size (array data bypasses it)
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
_PICKLING_ERRORS = (pickle.PicklingError, AttributeError, TypeError)
_TRAILER = struct.Struct("<5sd")
_MARK = b"\x00DMPs"


def write_pickle_atomic(path: Path, obj: Any, *, seconds: float | None = None) -> int:
    """Pickle ``obj`` to ``path`` through a temporary file and a rename; return bytes written.

    Classes that plain pickle cannot reach by reference (defined in a notebook and
    shipped to a worker by value) are written by name (see ``_classes``); objects
    that still cannot be pickled (lambdas in sample data) go through cloudpickle.

    Raises
    ------
    StorageError
        If the file cannot be written or ``obj`` cannot be pickled; no file is left.
    """

    def write(handle: IO[bytes]) -> None:
        _dump(obj, handle)
        if seconds is not None:
            handle.write(_TRAILER.pack(_MARK, seconds))

    return _write_atomic(path, write)


def write_json_atomic(path: Path, data: dict[str, Any]) -> int:
    """Write ``data`` as indented JSON to ``path`` atomically; return bytes written."""
    text = json.dumps(data, indent=2, sort_keys=True).encode("utf-8")
    return _write_atomic(path, lambda handle: handle.write(text))


def read_pickle(path: str | Path) -> tuple[Any, int]:
    """Load the pickle at ``path``; return the object and the bytes read.

    See :func:`read_entry`, which also returns the stored compute seconds.
    """
    obj, size, _ = read_entry(path, timed=False)
    return obj, size


def read_seconds(path: str | Path) -> float | None:
    """Return the compute seconds stored at the end of an entry, without loading it."""
    try:
        with open(path, "rb") as handle:
            handle.seek(-_TRAILER.size, os.SEEK_END)
            return _seconds(handle.read())
    except OSError:
        return None


def read_entry(path: str | Path, *, timed: bool = True) -> tuple[Any, int, float | None]:
    """Load the pickle at ``path``; return the object, the bytes read and its compute seconds.

    With ``timed=False`` the stored seconds are not looked at (``None``) and the bytes
    read are the file's size. Small files are read with one ``read`` call and unpickled
    from memory, which skips the buffered file object ``open()`` builds (a good part of
    a small cache hit); larger ones are unpickled from a buffered file, whose large
    reads (array buffers) go straight into their own memory, as with a plain ``open``.

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path`` (a cache miss, not an error).
    ClassNotFoundError
        If the file names a class (or module) this process cannot import.
    CacheCorruptedError
        If the file exists but cannot be loaded otherwise (truncated, corrupt).
    """
    fd = os.open(path, _READ_FLAGS)
    try:
        # Entries are complete once visible (written elsewhere, then renamed). The size
        # from lseek: os.fstat builds a stat_result, which costs more than the read.
        size = os.lseek(fd, 0, os.SEEK_END)
        if size <= _SMALL_FILE:
            data = os.pread(fd, size, 0)
            if len(data) < size:
                data = _read_rest(fd, data, size)
            if not timed:
                try:
                    return pickle.loads(data), len(data), None  # it ignores the trailer
                except Exception:
                    # The same error again, with its message; or a notebook class.
                    return _load(io.BytesIO(data), path), len(data), None
            memory = io.BytesIO(data)
            obj = _load(memory, path)
            end = memory.tell()
            trailer = data[end : end + _TRAILER.size]
        else:
            os.lseek(fd, 0, os.SEEK_SET)
            # A set buffer size spares open() its isatty() call.
            with open(fd, "rb", buffering=_BUFFER, closefd=False) as handle:
                try:
                    obj = pickle.load(handle)
                except Exception:
                    handle.seek(0)
                    obj = _load(handle, path)  # the same error again, or a notebook class
                if not timed:
                    return obj, size, None
                end = handle.tell()
                trailer = handle.read(_TRAILER.size)  # usually from the buffer: no read call
    finally:
        os.close(fd)
    seconds = _seconds(trailer)
    return obj, end + (_TRAILER.size if seconds is not None else 0), seconds


def _read_rest(fd: int, data: bytes, size: int) -> bytes:
    while len(data) < size:  # a short read: only on unusual file systems
        more = os.pread(fd, size - len(data), len(data))
        if not more:
            break
        data += more
    return data


def _load(handle: Any, path: str | Path) -> Any:
    try:
        try:
            return pickle.load(handle)
        except (AttributeError, ModuleNotFoundError) as exc:
            if not _is_class_lookup_error(exc):
                raise
            # A `__main__` class this process has by value only (a spawned worker).
            handle.seek(0)
            return load_with_notebook_classes(handle)
    except Exception as exc:
        msg = f"cannot load {str(path)!r}: {type(exc).__name__}: {exc}"
        if _is_class_lookup_error(exc):
            raise ClassNotFoundError(msg) from exc
        raise CacheCorruptedError(msg) from exc


def _seconds(trailer: bytes) -> float | None:
    if len(trailer) != _TRAILER.size or not trailer.startswith(_MARK):
        return None
    seconds: float = _TRAILER.unpack(trailer)[1]
    return seconds


class ClassNotFoundError(StorageError):
    """A file is intact but names a class this process cannot import.

    Typical for a class defined in a notebook, loaded in a spawned worker that was
    not given it. The file is fine for other processes, so it must not be replaced.
    """


def _is_class_lookup_error(exc: Exception) -> bool:
    # pickle's find_class raises these when a module or a name in it is missing.
    return isinstance(exc, ModuleNotFoundError) or (
        isinstance(exc, AttributeError) and str(exc).startswith("Can't get attribute")
    )


def make_folder(folder: Path) -> None:
    """Create ``folder`` and its parents as needed.

    Raises
    ------
    StorageError
        Naming the folder, if it cannot be created (a file in the way, read-only).
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        msg = (
            f"cannot create folder {str(folder)!r}: {type(exc).__name__}: {exc}; "
            "check that the path is a writable folder (not a file) with free space"
        )
        raise StorageError(msg) from exc


def _temp_file(folder: Path) -> tuple[int, str]:
    try:
        try:
            return tempfile.mkstemp(dir=folder, prefix=TEMP_PREFIX, suffix=".part")
        except FileNotFoundError:
            # The folder was never created, or was pruned while we ran.
            make_folder(folder)
            return tempfile.mkstemp(dir=folder, prefix=TEMP_PREFIX, suffix=".part")
    except OSError as exc:
        msg = (
            f"cannot write to folder {str(folder)!r}: {type(exc).__name__}: {exc}; "
            "check that it is a writable folder with free space"
        )
        raise StorageError(msg) from exc


def _write_atomic(path: Path, write: Any) -> int:
    fd, tmp_name = _temp_file(path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            size = handle.tell()
        os.replace(tmp_name, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        if isinstance(exc, (OSError, pickle.PicklingError, TypeError, AttributeError)):
            msg = f"cannot write {str(path)!r}: {type(exc).__name__}: {exc}"
            raise StorageError(msg) from exc
        raise
    return size


def _dump(obj: Any, handle: IO[bytes]) -> None:
    # Fastest first: plain pickle; then notebook classes by name; cloudpickle last
    # (by value: lambdas and the like in sample data).
    try:
        pickle.dump(obj, handle, protocol=pickle.HIGHEST_PROTOCOL)
        return
    except _PICKLING_ERRORS:
        _rewind(handle)
    try:
        NotebookClassPickler(handle, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
        return
    except _PICKLING_ERRORS:
        _rewind(handle)
    import cloudpickle

    cloudpickle.dump(obj, handle, protocol=pickle.HIGHEST_PROTOCOL)


def _rewind(handle: IO[bytes]) -> None:
    handle.seek(0)
    handle.truncate()
