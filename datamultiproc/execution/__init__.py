"""Execution: running a pipeline over many samples (imports core and storage)."""

from datamultiproc.execution._backends import Backend, Job, Outcome
from datamultiproc.execution._events import (
    ProgressSink,
    RunEvent,
    RunFinished,
    RunStarted,
    RunStatus,
    SampleFinished,
)
from datamultiproc.execution._result import RunResult
from datamultiproc.execution._runner import imap, run

__all__ = [
    "Backend",
    "Job",
    "Outcome",
    "ProgressSink",
    "RunEvent",
    "RunFinished",
    "RunResult",
    "RunStarted",
    "RunStatus",
    "SampleFinished",
    "imap",
    "run",
]
