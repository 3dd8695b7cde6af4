"""Hand-built run records for the notebook tests (no runner needed)."""

from __future__ import annotations

from typing import Any

from datamultiproc.core import FailureRecord, SampleRecord, StepRecord
from datamultiproc.execution import RunResult


def cached_run() -> RunResult[Any]:
    """Six samples through Load (cached: even ids hit) and Scale; s5 fails in Scale."""
    records = []
    for i in range(6):
        hit = i % 2 == 0
        load = StepRecord(
            0,
            "Load",
            "",
            0.1 if hit else 1.0,
            cache_hit=hit,
            bytes_read=100 if hit else 0,
            bytes_written=0 if hit else 200,
            recomputed=i == 3,
        )
        scale = StepRecord(1, "Scale", "k=2", 0.5, status="failed" if i == 5 else "ok")
        status = "failed" if i == 5 else "ok"
        records.append(SampleRecord(i, f"s{i}", f"process-{i % 2}", status, (load, scale)))
    failure = FailureRecord(
        5,
        "s5",
        "Scale",
        "ValueError",
        "bad <value>",
        "Traceback (most recent call last):\n  ...",
        "process-1",
    )
    return RunResult(
        records=records,
        failures=[failure],
        status="failed",
        wall_seconds=2.0,
        backend="process",
        workers=2,
    )
