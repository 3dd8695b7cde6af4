"""Plain events the runner emits while it runs; progress displays consume them.

Events are produced in the parent process only, in this order: one
:class:`RunStarted`, one :class:`SampleFinished` per sample (in completion
order), one :class:`RunFinished`. Consumers implement :class:`ProgressSink`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from datamultiproc.core import FailureRecord, SampleRecord

__all__ = ["ProgressSink", "RunEvent", "RunFinished", "RunStarted", "RunStatus", "SampleFinished"]

RunStatus = Literal["complete", "complete_with_failures", "failed", "interrupted"]


def _no_stop() -> None:
    """Do nothing: the ``stop`` of a :class:`RunStarted` made by hand, with no run to stop."""


@dataclass(frozen=True)
class RunStarted:
    """A run begins.

    Attributes
    ----------
    total
        Number of samples, or ``None`` when the input has no length (a generator).
    stages
        Stage names of the pipeline's leaf steps, in order.
    backend
        Backend name, e.g. ``"process"``.
    workers
        Number of workers.
    stop
        Call it to stop the run, as the widget's Stop button does: no new sample
        starts, ``run()`` returns what finished with status ``"interrupted"``.
        Safe to call from any thread, and more than once. A no-op in events made
        by hand.
    """

    total: int | None
    stages: tuple[str, ...]
    backend: str
    workers: int
    stop: Callable[[], None] = field(default=_no_stop, compare=False, repr=False)


@dataclass(frozen=True)
class SampleFinished:
    """One sample is done, successfully or not.

    Attributes
    ----------
    record
        Its steps and worker.
    failure
        The failure, or ``None`` if it succeeded.
    """

    record: SampleRecord
    failure: FailureRecord | None = None


@dataclass(frozen=True)
class RunFinished:
    """The run ended.

    Attributes
    ----------
    status
        ``"complete"`` (every sample succeeded), ``"complete_with_failures"`` (every
        sample ran, some failed and were collected), ``"failed"`` (the run raised and
        stopped: ``on_error="raise"`` or a backend error) or ``"interrupted"``
        (Ctrl-C, a Stop button, an ``imap`` consumer that stopped early).
    done
        Samples that succeeded.
    failed
        Samples that failed.
    seconds
        Wall time of the run.
    """

    status: RunStatus
    done: int
    failed: int
    seconds: float


RunEvent = RunStarted | SampleFinished | RunFinished


class ProgressSink(Protocol):
    """Receives a run's events in the parent process.

    Pass any object with this method as ``run(..., progress=sink)``; it gets the
    events the built-in displays get, in the order of the module docstring. To
    stop the run (a button of your own, a budget, a deadline), keep
    :attr:`RunStarted.stop` and call it: the run then ends as with the widget's
    Stop button.

    Examples
    --------
    >>> class StopAfterTen:
    ...     def handle(self, event):
    ...         if isinstance(event, RunStarted):
    ...             self.stop, self.seen = event.stop, 0
    ...         elif isinstance(event, SampleFinished):
    ...             self.seen += 1
    ...             if self.seen == 10:
    ...                 self.stop()
    """

    def handle(self, event: RunEvent) -> None:
        """Consume one event; must be quick (the runner waits for it)."""
