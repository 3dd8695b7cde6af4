"""A stage's tally counts cache records exactly as a Cache's own stats do."""

from __future__ import annotations

import math

from datamultiproc.core import SampleRecord, StepRecord
from datamultiproc.notebook._tallies import tally_by_stage
from datamultiproc.storage import CacheStats


def test_stage_tallies_and_cache_stats_count_the_same_records_the_same_way() -> None:
    steps = (
        StepRecord(0, "Load", "", 2.0, cache_hit=False, bytes_written=10, recomputed=True),
        StepRecord(1, "Load", "", 0.5, cache_hit=True, bytes_read=10),
        StepRecord(2, "Load", "", 0.5, cache_hit=True, bytes_read=10),
        StepRecord(3, "Scale", "", 1.0),
        StepRecord(4, "Save", "", 0.1, bytes_written=99),
    )
    tallies = tally_by_stage([SampleRecord(0, "a", "w", "ok", steps)])
    for stage, tally in tallies.items():
        stats = CacheStats.from_records(steps, stage=stage)
        assert CacheStats(*(getattr(tally, f) for f in CacheStats.__dataclass_fields__)) == stats
        assert tally.cached == (stats.lookups > 0)
        assert tally.hit_rate == stats.hit_rate or (
            math.isnan(tally.hit_rate) and math.isnan(stats.hit_rate)
        )
    assert (tallies["Load"].hits, tallies["Load"].misses, tallies["Load"].recomputed) == (2, 1, 1)
    assert tallies["Load"].hit_rate == 2 / 3
    assert math.isnan(tallies["Scale"].hit_rate)
    assert tallies["Scale"].done == 1
