"""Execution: running a pipeline over many samples (imports core and storage)."""

from datamultiproc.execution._events import (
    ProgressSink,
    RunEvent,
    RunFinished,
    RunStarted,
    RunStatus,
    SampleFinished,
)
from datamultiproc.execution._result import RunResult
from datamultiproc.execution._runner import run

__all__ = [
    "ProgressSink",
    "RunEvent",
    "RunFinished",
    "RunResult",
    "RunStarted",
    "RunStatus",
    "SampleFinished",
    "run",
]
