"""What the notebook changed in its process environment reaches warm workers too.

A worker copies its environment once, when it starts: the environment variables, the
working directory and ``sys.path``. A notebook that later sets
``os.environ["LABEL_SET"] = "v2"``, runs ``os.chdir("data")`` or
``sys.path.insert(0, "../src")`` changed nothing in a warm worker, which went on
reading the old variable or the same relative path in the old directory (another
``labels.csv``, without a word), or could not import the new folder's modules, where
the sequential backend saw the change.

So the pipeline carries an :class:`Environment`: every variable this process changed
since datamultiproc was imported (its value now, or ``None`` once deleted) and the
working directory once it changed; and an :class:`ImportPath`, the ``sys.path`` entries
added. A worker applies both before it unpickles the pipeline (see
:func:`~._moduledata.load_pipeline`; a module may read a variable when imported), and
the environment again before it runs samples of a pipeline after another's. The
environment is part of the pipeline's key (``setup()`` may read it: it runs again);
the import path is not (a folder added to ``sys.path`` matters to modules imported
later, and a pipeline using a module from there is a new pipeline anyway), so adding
one sets nothing up again.

The calling thread's calculation settings travel too, whole (they are no machine's own):
numpy's floating-point error handling (``np.seterr(all="raise")`` to catch bad samples
made workers return ``inf`` and NaN where the notebook's run failed them) and the
``decimal`` context (precision, rounding, traps). Both are per thread, so they are
applied in the thread that runs the samples, at each chunk (Dask runs tasks in threads);
the thread backend runs each chunk in a copy of the caller's context instead (see
``_backends``).

Only changes travel, never the whole environment: a Dask worker on another machine
keeps its own ``PATH``, ``HOME`` and directory unless the notebook changed them. A
variable changed once keeps travelling with its current value, so one set and later
deleted is deleted in the workers too. A directory a worker does not have (another
machine) is left as it is. Variables a C library read when it loaded
(``OMP_NUM_THREADS``) cannot change this way in any process, the notebook's included.
"""

from __future__ import annotations

import contextlib
import decimal
import os
import sys
from typing import Any, NamedTuple

import numpy as np

__all__ = ["CalculationSettings", "Environment", "ImportPath", "current", "current_import_path"]

_VARIABLES_AT_IMPORT = dict(os.environ)
_DIRECTORY_AT_IMPORT = os.getcwd()
_PATH_AT_IMPORT = frozenset(sys.path)
_CHANGED: set[str] = set()  # every variable seen changed, even if changed back since
_DIRECTORY_CHANGED = [False]  # likewise: back in the first directory travels too


class Environment(NamedTuple):
    """The caller's changed variables and directory, and its calculation settings."""

    variables: tuple[tuple[str, str | None], ...] = ()
    directory: str | None = None  # the working directory, once it changed
    settings: CalculationSettings | None = None

    def apply(self) -> None:
        """Make this process's variables, directory and settings match the caller's."""
        for name, value in self.variables:
            if value is None:
                os.environ.pop(name, None)
            elif os.environ.get(name) != value:
                os.environ[name] = value
        if self.directory is not None and os.getcwd() != self.directory:
            with contextlib.suppress(OSError):  # not on this machine
                os.chdir(self.directory)
        if self.settings is not None:
            self.settings.apply()


class CalculationSettings(NamedTuple):
    """The calling thread's numpy floating-point error handling and ``decimal`` context.

    Both are per thread (context variables): they are applied in the thread that runs
    the samples, at every chunk.
    """

    float_errors: tuple[tuple[str, Any], ...]  # np.geterr(), sorted
    decimal_context: decimal.Context

    @classmethod
    def current(cls) -> CalculationSettings:
        errors: dict[str, Any] = dict(np.geterr())
        context = decimal.getcontext().copy()
        context.clear_flags()  # the conditions met so far: not a setting (and they change)
        return cls(tuple(sorted(errors.items())), context)

    def apply(self) -> None:
        errors: dict[str, Any] = dict(self.float_errors)
        np.seterr(**errors)
        decimal.setcontext(self.decimal_context.copy())


class ImportPath(NamedTuple):
    """The ``sys.path`` entries the caller added, in its order, once each (see the module)."""

    added: tuple[str, ...] = ()
    first: tuple[str, ...] = ()  # those of them placed before the original entries

    def apply(self) -> None:
        """Add the entries this process's ``sys.path`` lacks (none is ever removed)."""
        missing = set(self.added).difference(sys.path)
        if missing:
            sys.path[:0] = [entry for entry in self.first if entry in missing]
            sys.path.extend(e for e in self.added if e in missing and e not in self.first)


def current() -> Environment:
    """Return this process's changed variables and directory since import.

    Examples
    --------
    >>> os.environ["DATAMULTIPROC_EXAMPLE"] = "1"
    >>> dict(current().variables)["DATAMULTIPROC_EXAMPLE"]
    '1'
    >>> del os.environ["DATAMULTIPROC_EXAMPLE"]
    >>> dict(current().variables)["DATAMULTIPROC_EXAMPLE"] is None
    True
    """
    now = dict(os.environ)
    if now != _VARIABLES_AT_IMPORT:
        _CHANGED.update(now.keys() ^ _VARIABLES_AT_IMPORT.keys())
        _CHANGED.update(n for n, value in now.items() if _VARIABLES_AT_IMPORT.get(n) != value)
    variables = tuple(sorted((name, now.get(name)) for name in _CHANGED))
    try:
        directory: str | None = os.getcwd()
    except OSError:  # the directory was removed
        directory = None
    _DIRECTORY_CHANGED[0] |= directory is not None and directory != _DIRECTORY_AT_IMPORT
    directory = directory if _DIRECTORY_CHANGED[0] else None
    return Environment(variables, directory, CalculationSettings.current())


def current_import_path() -> ImportPath:
    """Return the ``sys.path`` entries added since import."""
    added = tuple(dict.fromkeys(e for e in sys.path if e not in _PATH_AT_IMPORT))
    first = tuple(e for e in sys.path[: _first_original_position()] if e not in _PATH_AT_IMPORT)
    return ImportPath(added, tuple(dict.fromkeys(first)))


def _first_original_position() -> int:
    for position, entry in enumerate(sys.path):
        if entry in _PATH_AT_IMPORT:
            return position
    return len(sys.path)
