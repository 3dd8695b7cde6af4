"""CacheStats: how step records count as cache hits, misses and bytes, mergeable across processes.

The one definition of these counts: a Cache's ``stats`` and the notebook's per-stage
tallies (progress display, ``RunResult`` reprs, cache-stats frame) both use it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, fields

from datamultiproc.core import StepRecord

__all__ = ["CacheStats"]


@dataclass
class CacheStats:
    """Counters of one Cache step (or of one stage of a run).

    Worker processes count on their own copies of a Cache; the runner rebuilds the
    parent's counters from the step records they ship back, with
    :meth:`from_records` and :meth:`merge` (or :meth:`Cache.update_stats`).

    Attributes
    ----------
    hits
        Samples loaded from the cache.
    misses
        Samples computed by the wrapped processor and stored (recomputed ones included).
    recomputed
        Misses caused by a corrupt or truncated entry, which was replaced.
    bytes_read
        Bytes loaded on hits.
    bytes_written
        Bytes written on misses.

    Examples
    --------
    >>> stats = CacheStats(hits=3, misses=1)
    >>> stats.merge(CacheStats(hits=1))
    >>> stats.hits, stats.hit_rate
    (4, 0.8)
    >>> CacheStats().hit_rate  # no lookups, no rate
    nan
    """

    hits: int = 0
    misses: int = 0
    recomputed: int = 0
    bytes_read: int = 0
    bytes_written: int = 0

    @property
    def lookups(self) -> int:
        """Hits plus misses."""
        return self.hits + self.misses

    @property
    def hit_rate(self) -> float:
        """Hits divided by lookups; NaN before the first lookup (no lookups, no rate).

        NaN rather than 0.0, which would read as "every lookup missed"; in a DataFrame
        it shows as missing. The repr shows the counts only, so it stays readable.
        """
        return self.hits / self.lookups if self.lookups else math.nan

    def add(self, step: StepRecord) -> None:
        """Count one step record: a hit or a miss and its bytes; a step not cached counts nothing."""
        if step.cache_hit is None:
            return
        if step.cache_hit:
            self.hits += 1
        else:
            self.misses += 1
        self.recomputed += int(step.recomputed)
        self.bytes_read += step.bytes_read
        self.bytes_written += step.bytes_written

    def merge(self, other: CacheStats) -> None:
        """Add ``other``'s counters to these, in place."""
        for field in fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))

    def __add__(self, other: CacheStats) -> CacheStats:
        if not isinstance(other, CacheStats):
            return NotImplemented
        total = type(self)()
        total.merge(self)
        total.merge(other)
        return total

    @classmethod
    def from_records(
        cls, records: Iterable[StepRecord], *, stage: str, params: str | None = None
    ) -> CacheStats:
        """Count the cached steps of ``stage`` (and ``params``, if given) in step records.

        Parameters
        ----------
        records
            Step records, e.g. every ``SampleRecord.steps`` of a run, chained.
        stage
            The stage the Cache records under (:attr:`Cache.record_stage`).
        params
            Only count records with these parameters (:attr:`Cache.record_params`),
            to tell apart two Caches of one stage with different parameters.
        """
        stats = cls()
        for record in records:
            if record.stage == stage and (params is None or record.params == params):
                stats.add(record)
        return stats
