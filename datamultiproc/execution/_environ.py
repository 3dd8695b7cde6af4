"""Environment variables the notebook changed reach warm workers too.

A worker copies the environment once, when it starts. A notebook that later sets
``os.environ["LABEL_SET"] = "v2"`` (or deletes a variable) changes nothing in a warm
worker, which would go on reading the old value without a word, where the sequential
backend reads the new one. So the pipeline carries every variable this process
changed since datamultiproc was imported (:func:`changes`: its value now, or ``None``
once deleted), and a worker sets them before running (:func:`apply`).

Only changes travel, never the whole environment: a Dask worker on another machine
keeps its own ``PATH`` and ``HOME``. A variable changed once keeps travelling, with
its current value, so one set and later deleted is deleted in the workers too.
Variables a C library read when it loaded (``OMP_NUM_THREADS``) cannot be changed
this way in any process, the notebook's included.
"""

from __future__ import annotations

import os

__all__ = ["Changes", "apply", "changes"]

Changes = tuple[tuple[str, str | None], ...]

_AT_IMPORT = dict(os.environ)
_CHANGED: set[str] = set()  # every variable seen changed, even if changed back since


def changes() -> Changes:
    """Return ``(name, value now or None)`` for each variable changed since import, sorted.

    Examples
    --------
    >>> os.environ["DATAMULTIPROC_EXAMPLE"] = "1"
    >>> dict(changes())["DATAMULTIPROC_EXAMPLE"]
    '1'
    >>> del os.environ["DATAMULTIPROC_EXAMPLE"]
    >>> dict(changes())["DATAMULTIPROC_EXAMPLE"] is None
    True
    """
    now = dict(os.environ)
    if now != _AT_IMPORT:
        _CHANGED.update(now.keys() ^ _AT_IMPORT.keys())
        _CHANGED.update(name for name, value in now.items() if _AT_IMPORT.get(name) != value)
    return tuple(sorted((name, now.get(name)) for name in _CHANGED))


def apply(changed: Changes) -> None:
    """Set (or delete) each variable in this process as ``changed`` says."""
    for name, value in changed:
        if value is None:
            os.environ.pop(name, None)
        elif os.environ.get(name) != value:
            os.environ[name] = value
