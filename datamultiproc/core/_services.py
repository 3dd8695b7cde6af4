"""Services that core offers but a higher layer implements, registered at package import.

Core imports nothing above it. :meth:`Processor.run` and :meth:`Processor.imap` need
the runner, which lives in :mod:`datamultiproc.execution`; that layer registers it
here when it is imported (``import datamultiproc`` does so). :meth:`Processor.plan`
needs Cache, so :mod:`datamultiproc.storage` registers its planner the same way.
DataFrames in and out (:meth:`BaseSample.from_frame`, ``RunResult.to_frame()``,
``load_saved(...).to_frame()``) need the notebook layer's pandas tables:
``import datamultiproc`` registers a :class:`TableService` that imports them on first use.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from datamultiproc.exceptions import ExecutionError

if TYPE_CHECKING:
    from datamultiproc.core._tables import FrameColumns

__all__ = [
    "Runner",
    "TableService",
    "planner",
    "register_planner",
    "register_runner",
    "register_table_service",
    "register_trace_frame",
    "runner",
    "table_service",
    "trace_frame",
]


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


_planners: list[Callable[[Any, Iterable[Any]], Any]] = []


def register_planner(plan: Callable[[Any, Iterable[Any]], Any]) -> None:
    """Make ``plan(pipeline, samples)`` the implementation of :meth:`Processor.plan`."""
    _planners[:] = [plan]


def planner() -> Callable[[Any, Iterable[Any]], Any]:
    """Return the registered planner.

    Raises
    ------
    ExecutionError
        If none was registered (``datamultiproc.storage`` was never imported).
    """
    if not _planners:
        msg = "no planner registered: import datamultiproc (or datamultiproc.storage) first"
        raise ExecutionError(msg)
    return _planners[0]


_trace_frames: list[Callable[[Any], Any]] = []


def register_trace_frame(view: Callable[[Any], Any]) -> None:
    """Make ``view(trace) -> pandas.DataFrame`` implement :meth:`Trace.to_frame`."""
    _trace_frames[:] = [view]


def trace_frame() -> Callable[[Any], Any]:
    """Return the registered :meth:`Trace.to_frame` view.

    Raises
    ------
    ExecutionError
        If none was registered (``datamultiproc`` was never imported).
    """
    if not _trace_frames:
        msg = "no DataFrame view of a trace registered: import datamultiproc first"
        raise ExecutionError(msg)
    return _trace_frames[0]


@dataclass(frozen=True)
class TableService:
    """What a higher layer implements for tables; each function imports pandas itself.

    Attributes
    ----------
    read_frame
        ``read_frame(frame, none_columns) -> FrameColumns``.
    samples_frame
        ``samples_frame(samples, **options) -> DataFrame`` (see
        :func:`datamultiproc.samples_frame`).
    history_frame
        ``history_frame(samples) -> DataFrame``.
    """

    read_frame: Callable[[Any, frozenset[str]], FrameColumns]
    samples_frame: Callable[..., Any]
    history_frame: Callable[[Iterable[Any]], Any]


_service: list[TableService] = []


def register_table_service(service: TableService) -> None:
    """Make ``service`` read and make DataFrames for core, storage and execution."""
    _service[:] = [service]


def table_service() -> TableService:
    """Return the registered table service.

    Raises
    ------
    ExecutionError
        If none was registered (``datamultiproc`` was never imported).
    """
    if not _service:
        msg = "no table service registered: import datamultiproc (it registers pandas tables)"
        raise ExecutionError(msg)
    return _service[0]
