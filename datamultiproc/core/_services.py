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
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from datamultiproc.exceptions import ExecutionError

if TYPE_CHECKING:
    from datamultiproc.core._tables import FrameColumns

__all__ = [
    "Runner",
    "Slot",
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

T = TypeVar("T")


class Slot(Generic[T]):
    """One service that a higher layer registers; asking for it before then is an error.

    Examples
    --------
    >>> slot: Slot[int] = Slot("no number registered: import it first")
    >>> slot.set(3)
    >>> slot.get()
    3
    """

    __slots__ = ("_missing", "_value")

    def __init__(self, missing: str) -> None:
        self._missing = missing  # the error message while nothing is registered
        self._value: list[T] = []

    def set(self, value: T) -> None:
        """Register ``value``, replacing any earlier one."""
        self._value[:] = [value]

    def get(self) -> T:
        """Return the registered value; ``ExecutionError`` naming what to do if there is none."""
        if not self._value:
            raise ExecutionError(self._missing)
        return self._value[0]


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


_runner: Slot[Runner] = Slot(
    "no runner registered: import datamultiproc (or datamultiproc.execution) first"
)


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
    _runner.set(Runner(run=run, imap=imap))


def runner() -> Runner:
    """Return the registered runner.

    Raises
    ------
    ExecutionError
        If no runner was registered (``datamultiproc.execution`` was never imported).
    """
    return _runner.get()


_planner: Slot[Callable[[Any, Iterable[Any]], Any]] = Slot(
    "no planner registered: import datamultiproc (or datamultiproc.storage) first"
)


def register_planner(plan: Callable[[Any, Iterable[Any]], Any]) -> None:
    """Make ``plan(pipeline, samples)`` the implementation of :meth:`Processor.plan`."""
    _planner.set(plan)


def planner() -> Callable[[Any, Iterable[Any]], Any]:
    """Return the registered planner.

    Raises
    ------
    ExecutionError
        If none was registered (``datamultiproc.storage`` was never imported).
    """
    return _planner.get()


_trace_frame: Slot[Callable[[Any], Any]] = Slot(
    "no DataFrame view of a trace registered: import datamultiproc first"
)


def register_trace_frame(view: Callable[[Any], Any]) -> None:
    """Make ``view(trace) -> pandas.DataFrame`` implement :meth:`Trace.to_frame`."""
    _trace_frame.set(view)


def trace_frame() -> Callable[[Any], Any]:
    """Return the registered :meth:`Trace.to_frame` view.

    Raises
    ------
    ExecutionError
        If none was registered (``datamultiproc`` was never imported).
    """
    return _trace_frame.get()


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


_tables: Slot[TableService] = Slot(
    "no table service registered: import datamultiproc (it registers pandas tables)"
)


def register_table_service(service: TableService) -> None:
    """Make ``service`` read and make DataFrames for core, storage and execution."""
    _tables.set(service)


def table_service() -> TableService:
    """Return the registered table service.

    Raises
    ------
    ExecutionError
        If none was registered (``datamultiproc`` was never imported).
    """
    return _tables.get()
