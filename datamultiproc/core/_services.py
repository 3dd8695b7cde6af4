"""Services that core offers but a higher layer implements, registered at package import.

Core imports nothing above it. :meth:`Processor.run` and :meth:`Processor.imap` need
the runner, which lives in :mod:`datamultiproc.execution`; that layer registers it
here when it is imported (``import datamultiproc`` does so).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from datamultiproc.exceptions import ExecutionError

__all__ = ["Runner", "register_runner", "runner"]


@dataclass(frozen=True)
class Runner:
    """The functions that run a pipeline over many samples.

    Attributes
    ----------
    run
        ``run(pipeline, samples, **options)``, returning a result with every sample.
    imap
        ``imap(pipeline, samples, **options)``, returning an iterator of samples.
    """

    run: Callable[..., Any]
    imap: Callable[..., Iterator[Any]]


_registered: list[Runner] = []


def register_runner(run: Callable[..., Any], imap: Callable[..., Iterator[Any]]) -> None:
    """Make ``run`` and ``imap`` the runner of :meth:`Processor.run` and :meth:`Processor.imap`.

    Examples
    --------
    >>> from datamultiproc.core import _services
    >>> from datamultiproc.execution import imap, run
    >>> _services.register_runner(run, imap)  # what importing datamultiproc.execution does
    >>> _services.runner().run is run
    True
    """
    _registered[:] = [Runner(run=run, imap=imap)]


def runner() -> Runner:
    """Return the registered runner.

    Raises
    ------
    ExecutionError
        If no runner was registered (``datamultiproc.execution`` was never imported).
    """
    if not _registered:
        msg = "no runner registered: import datamultiproc (or datamultiproc.execution) first"
        raise ExecutionError(msg)
    return _registered[0]
