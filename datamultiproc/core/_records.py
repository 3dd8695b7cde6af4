"""Plain per-step records, collected while a pipeline runs.

Every processor call appends one :class:`StepRecord` to the active recorder, if
there is one. The runner activates a recorder around each sample in its workers
and ships the records back beside the sample; the notebook layer turns them into
DataFrames. Without an active recorder, recording costs one context lookup.
"""

from __future__ import annotations

import operator
from contextvars import ContextVar
from typing import Any, NamedTuple

__all__ = [
    "FailureRecord",
    "SampleRecord",
    "StepRecord",
    "StepRecorder",
    "current_recorder",
    "recording",
]

_new = tuple.__new__


class StepRecord(NamedTuple):
    """What happened in one step of one sample.

    Attributes
    ----------
    step
        Position of the step in the sample's run, from 0.
    stage
        Processor class name (for a Cache, the wrapped processor's).
    params
        The processor's parameters as text, as in ``processing_history``.
    seconds
        Wall time spent in the step (for a cache hit, the time to load).
    cache_hit
        ``True`` for a cache hit, ``False`` for a miss, ``None`` if not cached.
    status
        ``"ok"`` or ``"failed"``.
    bytes_read
        Bytes loaded from a cache entry (hits).
    bytes_written
        Bytes written to a cache or save file.
    recomputed
        ``True`` when a corrupt cache entry was found and recomputed.
    reason
        For a cache miss, why it missed in words, e.g. ``"parameter h: 0.4 → 0.5"``,
        ``"new sample"`` or ``"entry corrupt"``; ``None`` otherwise.
    computed_seconds
        For a cache hit, the worker seconds the entry took to compute when it was
        stored (``None`` for entries written before timings were kept).
    """

    step: int
    stage: str
    params: str
    seconds: float
    cache_hit: bool | None = None
    status: str = "ok"
    bytes_read: int = 0
    bytes_written: int = 0
    recomputed: bool = False
    reason: str | None = None
    computed_seconds: float | None = None


class FailureRecord(NamedTuple):
    """One sample that failed.

    Attributes
    ----------
    index
        Position of the sample in the run's input.
    sample_id
        The sample's id (or a description of the item if it had none).
    stage
        The stage that failed, or ``None`` (worker died before a stage was known,
        bad input, serialization).
    error_type
        Class name of the original exception, e.g. ``"ValueError"`` or ``"WorkerLostError"``.
    message
        The original exception's message.
    traceback
        The formatted traceback from the worker, or an explanation such as
        ``"worker died (signal SIGKILL)"``.
    worker
        Which worker held the sample.
    """

    # "index" shadows tuple.index; the name reads better than any alternative in frames.
    index: int  # type: ignore[assignment]
    sample_id: str
    stage: str | None
    error_type: str
    message: str
    traceback: str
    worker: str


class SampleRecord(NamedTuple):
    """The steps one sample went through in a run, and where.

    Attributes
    ----------
    index
        Position of the sample in the run's input.
    sample_id
        The sample's id.
    worker
        Which worker ran it, e.g. ``"process-1234"``.
    status
        ``"ok"`` or ``"failed"``.
    steps
        One :class:`StepRecord` per step run (a failed sample's last step has
        ``status="failed"``).
    """

    index: int  # type: ignore[assignment]
    sample_id: str
    worker: str
    status: str
    steps: tuple[StepRecord, ...]


class StepRecorder:
    """Collects the step records of one sample.

    ``params`` is an optional memo of processors' parameter texts shared by the
    samples of one run, so a step's text is built once instead of per sample; an
    entry is reused only while the processor's field values are the same objects.
    """

    __slots__ = ("params", "records")

    def __init__(self, params: dict[int, tuple[Any, tuple[Any, ...], str]] | None = None) -> None:
        self.records: list[StepRecord] = []
        self.params = params

    def describe(self, processor: Any) -> str:
        """Return ``processor.describe_params()``, from the memo while its fields are unchanged."""
        memo = self.params
        if memo is None:
            return str(processor.describe_params())
        known = memo.get(id(processor))
        if known is not None and known[0] is processor:
            values = processor.__dict__.values()  # compared without building a tuple
            if len(known[1]) == len(values) and all(map(operator.is_, known[1], values)):
                return known[2]
        text = str(processor.describe_params())
        memo[id(processor)] = (processor, tuple(processor.__dict__.values()), text)
        return text

    def add(
        self,
        stage: str,
        params: str,
        seconds: float,
        *,
        cache_hit: bool | None = None,
        status: str = "ok",
        bytes_read: int = 0,
        bytes_written: int = 0,
        computed_seconds: float | None = None,
    ) -> None:
        """Append a record for a step that just ended."""
        records = self.records
        # tuple.__new__ skips NamedTuple's Python-level constructor: this runs per step.
        records.append(
            _new(
                StepRecord,
                (
                    len(records),
                    stage,
                    params,
                    seconds,
                    cache_hit,
                    status,
                    bytes_read,
                    bytes_written,
                    False,  # recomputed
                    None,  # reason
                    computed_seconds,
                ),
            )
        )

    def mark_last(
        self,
        *,
        cache_hit: bool | None,
        bytes_written: int = 0,
        recomputed: bool = False,
        reason: str | None = None,
    ) -> None:
        """Set the cache outcome of the most recent record (a Cache marks the step it wrapped)."""
        if self.records:
            self.records[-1] = self.records[-1]._replace(
                cache_hit=cache_hit,
                bytes_written=bytes_written,
                recomputed=recomputed,
                reason=reason,
            )


_active: ContextVar[StepRecorder | None] = ContextVar("datamultiproc_recorder", default=None)


def current_recorder() -> StepRecorder | None:
    """Return the recorder active in this context, or ``None``."""
    return _active.get()


class recording:
    """Activate a fresh recorder for the duration of the block.

    A class rather than a generator-based context manager: it runs once per sample.
    ``params`` is passed to :class:`StepRecorder`.

    Examples
    --------
    >>> with recording() as recorder:
    ...     pass
    >>> recorder.records
    []
    """

    __slots__ = ("recorder", "token")

    def __init__(self, params: dict[int, tuple[Any, tuple[Any, ...], str]] | None = None) -> None:
        self.recorder = StepRecorder(params)

    def __enter__(self) -> StepRecorder:
        self.token = _active.set(self.recorder)
        return self.recorder

    def __exit__(self, *exc_info: object) -> None:
        _active.reset(self.token)
