"""Execution: running a pipeline over many samples (imports core and storage).

Importing this layer registers its runner with core, for ``Processor.run`` and
``Processor.imap``.
"""

from datamultiproc.core._services import register_runner
from datamultiproc.execution._backends import Backend
from datamultiproc.execution._events import (
    ProgressSink,
    RunEvent,
    RunFinished,
    RunStarted,
    RunStatus,
    SampleFinished,
)
from datamultiproc.execution._iterator import RunIterator
from datamultiproc.execution._job import Job, Outcome
from datamultiproc.execution._options import RunOptions
from datamultiproc.execution._result import RunResult
from datamultiproc.execution._runner import imap, run

register_runner(run, imap)

__all__ = [
    "Backend",
    "Job",
    "Outcome",
    "ProgressSink",
    "RunEvent",
    "RunFinished",
    "RunIterator",
    "RunOptions",
    "RunResult",
    "RunStarted",
    "RunStatus",
    "SampleFinished",
    "imap",
    "run",
]
