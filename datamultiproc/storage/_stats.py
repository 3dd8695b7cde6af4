"""CacheStats: hit and byte counters of one Cache, mergeable across processes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields

from datamultiproc.core import StepRecord

__all__ = ["CacheStats"]


@dataclass
class CacheStats:
    """Counters of one Cache step.

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
        """Hits divided by lookups (0.0 before the first lookup)."""
        return self.hits / self.lookups if self.lookups else 0.0

    def merge(self, other: CacheStats) -> None:
        """Add ``other``'s counters to these, in place."""
        for field in fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))

    def __add__(self, other: CacheStats) -> CacheStats:
        if not isinstance(other, CacheStats):
            return NotImplemented
        total = CacheStats()
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
            if record.cache_hit is None or record.stage != stage:
                continue
            if params is not None and record.params != params:
                continue
            if record.cache_hit:
                stats.hits += 1
            else:
                stats.misses += 1
            stats.recomputed += int(record.recomputed)
            stats.bytes_read += record.bytes_read
            stats.bytes_written += record.bytes_written
        return stats
