"""Per-stage tallies of step records, in plain Python (no pandas).

Shared by the progress displays (which update them one sample at a time), the
``RunResult`` reprs and the cache-stats frame.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from datamultiproc.core import SampleRecord, StepRecord
from datamultiproc.storage import CacheStats

__all__ = ["StageTally", "occurrence_keys", "tally_by_stage"]


@dataclass
class StageTally(CacheStats):
    """Counts for one stage: steps done and failed, and its cache counts and seconds.

    The cache counts (hits, misses, ``hit_rate``, bytes) are :class:`CacheStats`'s,
    counted the same way as a Cache's own ``stats``.
    """

    done: int = 0
    failed: int = 0
    hit_seconds: float = 0.0
    miss_seconds: float = 0.0
    hits_timed: int = 0  # hits whose entry stored its compute time
    hit_computed_seconds: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)

    def add(self, step: StepRecord) -> None:
        """Count one step record."""
        if step.status == "ok":
            self.done += 1
        else:
            self.failed += 1
        super().add(step)
        if step.cache_hit is True:
            self.hit_seconds += step.seconds
            if step.computed_seconds is not None:
                self.hits_timed += 1
                self.hit_computed_seconds += step.computed_seconds
        elif step.cache_hit is False:
            self.miss_seconds += step.seconds
            if step.reason is not None:
                self.reasons[step.reason] = self.reasons.get(step.reason, 0) + 1

    @property
    def cached(self) -> bool:
        """Whether the stage went through a cache at least once."""
        return self.lookups > 0

    @property
    def seconds_saved(self) -> float:
        """Worker seconds saved by hits: what the hits took to compute, less loading time.

        Each entry stores the worker seconds it took to compute; hits of older
        entries without a stored time count the misses' mean time. Worker time,
        summed over samples: with several workers the wall time saved is less.
        NaN when a hit has neither (an only-hit rerun of entries without timings).
        """
        untimed = self.hits - self.hits_timed
        if untimed and not self.misses:
            return math.nan
        estimate = self.hit_computed_seconds
        if untimed:
            estimate += untimed * (self.miss_seconds / self.misses)
        return estimate - self.hit_seconds

    def reasons_text(self) -> str:
        """Miss reasons with counts, most frequent first, e.g. ``"new sample (3)"``."""
        ranked = sorted(self.reasons.items(), key=lambda item: -item[1])
        return "; ".join(f"{reason} ({count})" for reason, count in ranked)


def tally_by_stage(records: Iterable[SampleRecord]) -> dict[str, StageTally]:
    """Return one tally per stage name, in order of first appearance.

    Examples
    --------
    >>> step = StepRecord(0, "Load", "", 0.5, cache_hit=False)
    >>> tallies = tally_by_stage([SampleRecord(0, "a", "main", "ok", (step,))])
    >>> tallies["Load"].misses, tallies["Load"].hit_rate
    (1, 0.0)
    """
    tallies: dict[str, StageTally] = {}
    for record in records:
        for step in record.steps:
            tally = tallies.get(step.stage)
            if tally is None:
                tally = tallies[step.stage] = StageTally()
            tally.add(step)
    return tallies


def occurrence_keys(stages: Iterable[str]) -> list[str]:
    """Name each step of a pipeline, numbering a stage that occurs more than once.

    Examples
    --------
    >>> occurrence_keys(["Add", "Double", "Add"])
    ['Add', 'Double', 'Add (2)']
    """
    seen: dict[str, int] = {}
    keys = []
    for stage in stages:
        seen[stage] = seen.get(stage, 0) + 1
        keys.append(stage if seen[stage] == 1 else f"{stage} ({seen[stage]})")
    return keys
