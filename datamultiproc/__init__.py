"""datamultiproc: per-sample data pipelines on pydantic, run in parallel from notebooks.

Define samples (:class:`BaseSample`), write processors (:class:`Processor`),
chain them (:class:`Compose`), keep results on disk (:class:`Cache`,
:class:`Save`). Notebook features live in :mod:`datamultiproc.notebook`.
"""

from datamultiproc.core import BaseSample, Compose, Processor, StepRecord
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
from datamultiproc.storage import Cache, Save

__version__ = "0.1.0"

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
    "ProcessingError",
    "Processor",
    "Save",
    "StepRecord",
    "StorageError",
    "WorkerLostError",
    "__version__",
]

for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type):
        _obj.__module__ = "datamultiproc"
del _name, _obj
