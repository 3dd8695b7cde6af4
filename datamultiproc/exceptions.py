"""Errors and warnings raised by datamultiproc.

The hierarchy::

    DatamultiprocError(Exception)
    ├── ProcessingError                 a processor failed on a sample
    ├── TableError(ValueError)          rows of a table cannot become samples
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
    ├── FailuresWarning                 a run finished with failed samples
    ├── MixedConfigurationsWarning      a Save folder holds files of several configurations
    └── ReusedInputWarning              a lazy input handed two samples one mutable object

Wrong arguments raise plain ``ValueError`` or ``TypeError`` naming the argument.
"""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = [
    "CacheCorruptedError",
    "CacheWarning",
    "DatamultiprocError",
    "DatamultiprocWarning",
    "ExecutionError",
    "FailuresWarning",
    "MissingDependencyError",
    "MixedConfigurationsWarning",
    "NotPicklableError",
    "ProcessingError",
    "ReusedInputWarning",
    "StorageError",
    "TableError",
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


class TableProblem(NamedTuple):
    """One invalid cell or row of a table: its row label, the field, pydantic's message."""

    label: Any
    field: str | None
    message: str


class TableError(DatamultiprocError, ValueError):
    """Rows of a table (or records) cannot become samples; raised before any sample is returned.

    The message lists every invalid row (the first 20, then a count) with its label,
    field and pydantic's message, the columns that match no field, and repeated ids.

    Attributes
    ----------
    sample_class
        Name of the sample class.
    rows
        Number of rows in the table.
    problems
        One :class:`TableProblem` per invalid cell (missing ids included).
    unknown_columns
        Columns that match no field.
    duplicate_ids
        Ids given to more than one row.
    """

    def __init__(
        self,
        message: str,
        *,
        sample_class: str | None = None,
        rows: int = 0,
        problems: list[TableProblem] | None = None,
        unknown_columns: list[str] | None = None,
        duplicate_ids: list[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.sample_class = sample_class
        self.rows = rows
        self.problems = problems or []
        self.unknown_columns = unknown_columns or []
        self.duplicate_ids = duplicate_ids or []

    @classmethod
    def describe(
        cls,
        sample_class: str,
        *,
        rows: int,
        problems: list[TableProblem],
        unknown_columns: list[str],
        duplicate_ids: list[str],
        fields: list[str],
    ) -> TableError:
        """Return the error for these problems, with a message listing them."""
        lines = [f"the table cannot become {sample_class} samples ({rows} rows):"]
        if unknown_columns:
            names = ", ".join(repr(name) for name in unknown_columns)
            lines.append(
                f"  columns that match no field: {names} (fields: {', '.join(fields)}); "
                "rename them, or pass ignore_unknown=True to leave them out"
            )
        if duplicate_ids:
            shown = ", ".join(repr(i) for i in duplicate_ids[:_SHOWN])
            more = f" and {len(duplicate_ids) - _SHOWN} more" if len(duplicate_ids) > _SHOWN else ""
            lines.append(
                f"  ids on more than one row: {shown}{more}; every sample needs its own id"
            )
        if problems:
            lines.append(f"  {len({repr(p.label) for p in problems})} invalid row(s):")
            for problem in problems[:_SHOWN]:
                field = f"field {problem.field!r}" if problem.field else "row"
                lines.append(f"    row {problem.label!r}, {field}: {problem.message}")
            if len(problems) > _SHOWN:
                lines.append(f"    ... and {len(problems) - _SHOWN} more problem(s)")
        return cls(
            "\n".join(lines),
            sample_class=sample_class,
            rows=rows,
            problems=problems,
            unknown_columns=unknown_columns,
            duplicate_ids=duplicate_ids,
        )

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only arguments are lost by the default exception pickling.
        return (_rebuild_table_error, (str(self), self.__dict__.copy()))


_SHOWN = 20


def _rebuild_table_error(message: str, state: dict[str, Any]) -> TableError:
    return TableError(message, **state)


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


class MixedConfigurationsWarning(DatamultiprocWarning):
    """A Save folder holds files written by other pipeline configurations; they were left out."""


class ReusedInputWarning(DatamultiprocWarning):
    """Consecutive samples of a lazy input (a generator) hold one mutable object.

    If the input refills that object for every sample (a generator reusing one buffer),
    samples read ahead but not yet run see only its last contents, on every backend
    but ``"sequential"``: yield a new object per sample.
    """
