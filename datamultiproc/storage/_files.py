"""Atomic pickle files: a file appears complete or not at all."""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

from datamultiproc.exceptions import StorageError

__all__ = ["write_pickle_atomic"]


def write_pickle_atomic(path: Path, obj: Any) -> int:
    """Pickle ``obj`` to ``path`` through a temporary file and a rename; return bytes written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            pickle.dump(obj, handle, protocol=pickle.HIGHEST_PROTOCOL)
            size = handle.tell()
        os.replace(tmp_name, path)
    except BaseException as exc:
        with _suppress_oserror():
            os.unlink(tmp_name)
        if isinstance(exc, OSError):
            msg = f"cannot write {str(path)!r}: {exc}"
            raise StorageError(msg) from exc
        raise
    return size


class _suppress_oserror:
    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: object, exc: object, tb: object) -> bool:
        return isinstance(exc, OSError)
