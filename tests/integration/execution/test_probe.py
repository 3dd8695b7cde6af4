"""A probe of the parent's speed never leaves the workers waiting for more than their queue."""

from __future__ import annotations

from collections import Counter

import pytest

from datamultiproc import run
from datamultiproc.execution._policy import InlinePolicy
from tests.helpers import SleepOn, number_samples


@pytest.mark.slow
def test_a_probe_stops_when_the_workers_queued_chunks_would_run_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def always_probe(self: InlinePolicy) -> int:
        if self.pace is None or self.work is None:
            return 0
        self.probing = True
        return 32

    # Probes of 32 samples, as long as the parent likes: only the workers' queue stops them.
    monkeypatch.setattr(InlinePolicy, "chunk_size", always_probe)
    monkeypatch.setattr(InlinePolicy, "start_first", lambda self, workers: None)  # workers first
    monkeypatch.setattr(InlinePolicy, "deadline", lambda self, size, started: float("inf"))
    samples = number_samples(160)
    pipeline = SleepOn(ids=[s.id for s in samples], seconds=0.01)
    result = run(pipeline, samples, workers=2, chunksize=1, progress=False)
    assert result.n_ok == 160
    where = Counter(record.worker == "parent" for record in result.records)
    # Two workers hold two 10 ms samples each: a probe stops after about four samples'
    # worth of the workers' pace, where an unchecked one would run all 32 of its samples.
    assert where[True] < 80, where
    assert where[False] > 80, where
