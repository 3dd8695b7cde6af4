"""datamultiproc: per-sample data pipelines on pydantic, run in parallel from notebooks.

Define samples (:class:`BaseSample`), write processors (:class:`Processor`),
chain them (:class:`Compose`), keep results on disk (:class:`Cache`,
:class:`Save`). Notebook features live in :mod:`datamultiproc.notebook`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from datamultiproc._wiring import connect_layers as _connect_layers
from datamultiproc.core import BaseSample, Compose, Processor, StepRecord, Trace, TraceStep
from datamultiproc.exceptions import (
    CacheCorruptedError,
    DatamultiprocError,
    DatamultiprocWarning,
    ExecutionError,
    MissingDependencyError,
    NotPicklableError,
    ProcessingError,
    StorageError,
    WorkerLostError,
)
from datamultiproc.execution import RunResult, run
from datamultiproc.storage import Cache, Plan, Save

if TYPE_CHECKING:
    import pandas as pd  # noqa: TID251 (type hints only)

__version__ = "0.1.0"


def history_frame(samples: Iterable[BaseSample]) -> pd.DataFrame:
    """Return one row per sample and history entry, from ``processing_history`` alone.

    Works for any samples, e.g. ones loaded from a Save folder. Imports pandas on first use.
    """
    from datamultiproc.notebook import _frames

    return _frames.history_frame(samples)


_connect_layers()

__all__ = [
    "BaseSample",
    "Cache",
    "CacheCorruptedError",
    "Compose",
    "DatamultiprocError",
    "DatamultiprocWarning",
    "ExecutionError",
    "MissingDependencyError",
    "NotPicklableError",
    "Plan",
    "ProcessingError",
    "Processor",
    "RunResult",
    "Save",
    "StepRecord",
    "StorageError",
    "Trace",
    "TraceStep",
    "WorkerLostError",
    "__version__",
    "history_frame",
    "run",
]

for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) or callable(_obj):
        _obj.__module__ = "datamultiproc"
del _name, _obj
