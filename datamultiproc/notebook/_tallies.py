"""Per-stage tallies of step records, in plain Python (no pandas).

Shared by the progress displays (which update them one sample at a time), the
``RunResult`` reprs and the cache-stats frame.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

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

    def add(self, step: StepRecord) -> None:
        """Count one step record."""
        if step.status == "ok":
            self.done += 1
        else:
            self.failed += 1
        super().add(step)
        if step.cache_hit is True:
            self.hit_seconds += step.seconds
        elif step.cache_hit is False:
            self.miss_seconds += step.seconds

    @property
    def cached(self) -> bool:
        """Whether the stage went through a cache at least once."""
        return self.lookups > 0

    @property
    def seconds_saved(self) -> float:
        """Estimated time saved by hits: hits times the misses' mean time, less loading time.

        NaN when there were no misses to estimate from (e.g. a rerun that only hit).
        """
        if not self.misses:
            return math.nan if self.hits else 0.0
        return self.hits * (self.miss_seconds / self.misses) - self.hit_seconds


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
