"""Plain events the runner emits while it runs; progress displays consume them.

Events are produced in the parent process only, in this order: one
:class:`RunStarted`, one :class:`SampleFinished` per sample (in completion
order), one :class:`RunFinished`. Consumers implement :class:`ProgressSink`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from datamultiproc.core import FailureRecord, SampleRecord

__all__ = ["ProgressSink", "RunEvent", "RunFinished", "RunStarted", "RunStatus", "SampleFinished"]

RunStatus = Literal["complete", "failed", "interrupted"]


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
    """

    total: int | None
    stages: tuple[str, ...]
    backend: str
    workers: int


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
        ``"complete"`` (every sample succeeded), ``"failed"`` (some failed, or the
        run raised) or ``"interrupted"`` (Ctrl-C, a Stop button).
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
    """Receives a run's events in the parent process."""

    def handle(self, event: RunEvent) -> None:
        """Consume one event; must be quick (the runner waits for it)."""
