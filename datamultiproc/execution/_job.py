"""What a backend runs and what it yields back: :class:`Job`, items and :class:`Outcome`.

Shared by the runner and every backend; imports no backend, so backends can import it.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import NamedTuple

from datamultiproc.core import BaseSample, FailureRecord, Processor, SampleRecord, StepRecord
from datamultiproc.execution._worker import RawOutcome

__all__ = ["Item", "Job", "Outcome", "to_outcome", "usable_cores"]

Item = tuple[int, BaseSample]
_new = tuple.__new__


@dataclass(frozen=True)
class Job:
    """What a backend runs: the pipeline and the run's settings.

    Attributes
    ----------
    pipeline
        The processor to run on every sample.
    stop
        Set when the run must stop (Stop button, Ctrl-C).
    timeout
        Seconds one sample may take, or ``None``.
    chunksize
        Samples per work unit, or ``None`` to choose automatically.
    total
        Number of items if known, to balance the last chunks.
    """

    pipeline: Processor
    stop: threading.Event
    timeout: float | None = None
    chunksize: int | None = None
    total: int | None = None


class Outcome(NamedTuple):
    """One finished item: the processed sample (``None`` if it failed) and its records."""

    index: int  # type: ignore[assignment]
    sample: BaseSample | None
    record: SampleRecord
    failure: FailureRecord | None


def to_outcome(raw: RawOutcome, worker: str, sample: BaseSample | None = None) -> Outcome:
    """Turn a worker's plain outcome tuple into an :class:`Outcome`."""
    index, sample_id, result, steps, failure = raw
    # tuple.__new__ skips NamedTuple's Python-level constructors: this runs per sample.
    records = tuple([_new(StepRecord, step) for step in steps])
    if failure is None:
        record = _new(SampleRecord, (index, sample_id, worker, "ok", records))
        return _new(Outcome, (index, sample if sample is not None else result, record, None))
    record = _new(SampleRecord, (index, sample_id, worker, "failed", records))
    return Outcome(index, None, record, FailureRecord(index, sample_id, *failure, worker))


def usable_cores() -> int:
    """Return the number of cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
