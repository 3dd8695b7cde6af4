"""Errors and warnings raised by datamultiproc.

The hierarchy::

    DatamultiprocError(Exception)
    ├── ProcessingError                 a processor failed on a sample
    ├── StorageError                    cache or save I/O failed
    │   └── CacheCorruptedError         an entry on disk cannot be loaded
    ├── ExecutionError(RuntimeError)    the runner itself failed
    │   ├── WorkerLostError             a worker process died
    │   └── NotPicklableError(TypeError)
    │                                   a sample or processor cannot reach a worker
    └── MissingDependencyError(ImportError)
                                        an optional extra is not installed
    DatamultiprocWarning(UserWarning)
    ├── CacheWarning                    a cache entry was recomputed or cannot be keyed
    └── FailuresWarning                 a run finished with failed samples

Wrong arguments raise plain ``ValueError`` or ``TypeError`` naming the argument.
"""

from __future__ import annotations

__all__ = [
    "CacheCorruptedError",
    "CacheWarning",
    "DatamultiprocError",
    "DatamultiprocWarning",
    "ExecutionError",
    "FailuresWarning",
    "MissingDependencyError",
    "NotPicklableError",
    "ProcessingError",
    "StorageError",
    "WorkerLostError",
]


class DatamultiprocError(Exception):
    """Base class of every error raised by datamultiproc."""


class ProcessingError(DatamultiprocError):
    """A processor raised, or returned something that is not a sample.

    Parameters
    ----------
    message
        What went wrong.
    sample_id
        The id of the sample being processed, or ``None`` if unknown.
    processor
        The name of the stage (processor class) that failed.

    The original exception, when there is one, is available as ``__cause__``.
    """

    def __init__(self, message: str, *, sample_id: str | None = None, processor: str | None = None):
        super().__init__(message)
        self.sample_id = sample_id
        self.processor = processor

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only arguments are lost by the default exception pickling.
        return (_rebuild_processing_error, (str(self), self.sample_id, self.processor))


def _rebuild_processing_error(
    message: str, sample_id: str | None, processor: str | None
) -> ProcessingError:
    return ProcessingError(message, sample_id=sample_id, processor=processor)


class StorageError(DatamultiprocError):
    """Reading or writing a cache or save file failed."""


class CacheCorruptedError(StorageError):
    """A cache entry exists but cannot be loaded (truncated, corrupt or of the wrong type)."""


class ExecutionError(DatamultiprocError, RuntimeError):
    """The runner could not execute the pipeline."""


class WorkerLostError(ExecutionError):
    """A worker process died while it held a sample."""


class NotPicklableError(ExecutionError, TypeError):
    """A sample or processor cannot be serialized to reach a worker process."""


class MissingDependencyError(DatamultiprocError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


class DatamultiprocWarning(UserWarning):
    """Base class of every warning issued by datamultiproc."""


class CacheWarning(DatamultiprocWarning):
    """A cache entry was recomputed after corruption, or a key part cannot be fingerprinted."""


class FailuresWarning(DatamultiprocWarning):
    """A run finished but some samples failed (``on_error="collect"``)."""
