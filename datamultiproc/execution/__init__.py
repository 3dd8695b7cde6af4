"""Execution: running a pipeline over many samples (imports core and storage).

Importing this layer registers its runner with core, for ``Processor.run`` and
``Processor.imap``.
"""

from typing import Any

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


def __getattr__(name: str) -> Any:
    # The process and Dask backends import multiprocess and cloudpickle: only when asked
    # for, so that ``import datamultiproc`` stays light.
    if name == "MultiprocessBackend":
        from datamultiproc.execution._multiprocess import MultiprocessBackend

        return MultiprocessBackend
    if name == "DaskBackend":
        from datamultiproc.execution._dask import DaskBackend

        return DaskBackend
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)


__all__ = [
    "Backend",
    "DaskBackend",
    "Job",
    "MultiprocessBackend",
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
