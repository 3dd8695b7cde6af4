"""How many samples go into the next work unit, for backends that send chunks.

Chunks start at one sample (the first results come back at once, and the cost
of a sample is not known yet) and double until a chunk takes about
``target_seconds`` of worker time; they stay under ``target_bytes`` once pickled,
and shrink near the end of an input of known length, so every worker finishes at
about the same time (but, with ``min_seconds``, not below the samples a work unit
must hold to be worth its fixed cost).
"""

from __future__ import annotations

import math

__all__ = ["ChunkSizer"]


class ChunkSizer:
    """Adaptive chunk size from measured seconds and bytes per sample.

    Parameters
    ----------
    fixed
        A chunk size the user chose, used as it is; ``None`` to adapt.
    total
        Number of samples in the input, if known.
    slots
        Number of workers (or worker threads) the chunks are spread over.
    target_seconds
        Worker time one chunk should take.
    max_chunk
        Upper bound on the chunk size.
    target_bytes
        Upper bound on a chunk's pickled size.
    min_seconds
        Worker time a tail chunk keeps once the cost of a sample is known: where each
        work unit has a fixed cost (a Dask task's round trip), splitting the tail
        finer costs more than it balances. A remainder of less than half that
        joins the chunk before it.
    """

    def __init__(
        self,
        *,
        fixed: int | None,
        total: int | None,
        slots: int,
        target_seconds: float,
        max_chunk: int,
        target_bytes: int = 4 << 20,
        min_seconds: float = 0.0,
    ) -> None:
        self.fixed, self.total, self.slots = fixed, total, slots
        self.target_seconds, self.max_chunk, self.target_bytes = (
            target_seconds,
            max_chunk,
            target_bytes,
        )
        self.min_seconds = min_seconds
        self.taken = 0
        self.growth_limit = 1
        self.seconds_per_sample: float | None = None
        self.bytes_per_sample = 0.0

    def size(self, *, requeued: int = 0) -> int:
        """Return the size of the next chunk; ``requeued`` samples wait to be sent again."""
        if self.fixed:
            return self.fixed
        size = self.growth_limit
        if self.seconds_per_sample is not None:
            per_sample = max(self.seconds_per_sample, 1e-7)
            size = min(size, max(1, int(self.target_seconds / per_sample)))
        if self.bytes_per_sample:
            size = min(size, max(1, int(self.target_bytes / self.bytes_per_sample)))
        if self.total is not None:
            left = self.total - self.taken + requeued
            share = math.ceil(left / (2 * self.slots))
            if self.min_seconds and self.seconds_per_sample is not None:
                least = int(self.min_seconds / max(self.seconds_per_sample, 1e-7))
                share = max(share, least)
                if left - share < least / 2:  # too little would be left for a unit of its own
                    share = left
            size = min(size, max(1, share))
        return size

    def took(self, new_samples: int) -> None:
        """Count samples read from the input for a chunk, and let the next chunk grow."""
        self.taken += new_samples
        self.growth_limit = min(2 * self.growth_limit, self.max_chunk)

    def observe_seconds(self, seconds: float, samples: int) -> None:
        """Fold a finished chunk's worker time into the estimate (recent chunks weigh more)."""
        per_sample = seconds / max(samples, 1)
        old = self.seconds_per_sample
        self.seconds_per_sample = per_sample if old is None else 0.7 * old + 0.3 * per_sample

    def observe_bytes(self, nbytes: int, samples: int) -> None:
        """Fold a sent chunk's pickled size into the estimate."""
        per_sample = nbytes / max(samples, 1)
        old = self.bytes_per_sample
        self.bytes_per_sample = 0.5 * (old or per_sample) + 0.5 * per_sample
