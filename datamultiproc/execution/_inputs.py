"""Checking a run's input: every item a sample, every id unique.

A list or tuple is checked whole before any work starts, and a bad item raises.
Any other iterable is read lazily, a batch at a time: a bad item there becomes a
failed outcome (so the samples already processed are not lost) and is never run.

Remembering every id of a long generator would grow without bound; ids older than
the most recent :data:`_RECENT` are kept as 64-bit hashes in a few sorted numpy
arrays (8 bytes each), checked a batch at a time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Sized
from itertools import islice
from typing import Any

import numpy as np

from datamultiproc.core import BaseSample, FailureRecord, SampleRecord
from datamultiproc.execution._job import Item, Outcome

__all__ = ["InputReader"]

_RECENT = 1 << 16
_MAX_BATCH = 1024


class InputReader:
    """Iterate over ``(index, sample)`` items of checked input.

    Attributes
    ----------
    total
        Number of items when the input has a length, else the ``total`` hint (or ``None``).
    rejected
        Failed outcomes of bad items found while reading lazily.
    """

    def __init__(self, samples: Iterable[Any], *, total: int | None = None) -> None:
        self.rejected: deque[Outcome] = deque()
        self.total = len(samples) if isinstance(samples, Sized) else total
        if isinstance(samples, (list, tuple)):
            _check_all(samples)
            self._items: Iterator[Item] = enumerate(samples)
        else:
            self._items = self._read_lazily(iter(samples))

    def __iter__(self) -> Iterator[Item]:
        return self._items

    def _read_lazily(self, source: Iterator[Any]) -> Iterator[Item]:
        seen = _SeenIds()
        index, size = 0, 1
        while batch := list(islice(source, size)):
            size = min(2 * size, _MAX_BATCH)
            repeats = iter(seen.add([item.id for item in batch if isinstance(item, BaseSample)]))
            for item in batch:
                if not isinstance(item, BaseSample):
                    self._reject(index, _describe(item), "TypeError", _not_a_sample(index, item))
                elif next(repeats):
                    self._reject(index, item.id, "ValueError", _duplicate(item.id))
                else:
                    yield index, item
                index += 1

    def _reject(self, index: int, sample_id: str, error_type: str, message: str) -> None:
        record = SampleRecord(index, sample_id, "main", "failed", ())
        failure = FailureRecord(index, sample_id, None, error_type, message, message, "main")
        self.rejected.append(Outcome(index, None, record, failure))


class _SeenIds:
    """The ids read so far: recent ones exactly, older ones as sorted hash arrays."""

    def __init__(self) -> None:
        self.recent: set[str] = set()
        self.levels: list[np.ndarray[Any, np.dtype[np.int64]]] = []

    def add(self, ids: list[str]) -> list[bool]:
        """Remember ``ids``; return for each whether it was seen before."""
        hashes = np.fromiter(map(hash, ids), dtype=np.int64, count=len(ids))
        old = np.zeros(len(ids), dtype=bool)
        for level in self.levels:
            positions = np.minimum(np.searchsorted(level, hashes), len(level) - 1)
            old |= level[positions] == hashes
        repeats = []
        for sample_id, is_old in zip(ids, old.tolist(), strict=True):
            repeats.append(is_old or sample_id in self.recent)
            self.recent.add(sample_id)
        if len(self.recent) >= _RECENT:
            self._flush()
        return repeats

    def _flush(self) -> None:
        level = np.sort(np.fromiter(map(hash, self.recent), dtype=np.int64))
        self.recent.clear()
        self.levels.append(level)
        # Merge equal-sized neighbours: a few levels, each id re-sorted O(log n) times.
        while len(self.levels) > 1 and len(self.levels[-2]) <= len(self.levels[-1]):
            last = self.levels.pop()
            self.levels[-1] = np.sort(np.concatenate([self.levels[-1], last]))


def _check_all(samples: list[Any] | tuple[Any, ...]) -> None:
    seen: set[str] = set()
    for index, item in enumerate(samples):
        if not isinstance(item, BaseSample):
            raise TypeError(_not_a_sample(index, item))
        if item.id in seen:
            raise ValueError(_duplicate(item.id))
        seen.add(item.id)


def _not_a_sample(index: int, item: Any) -> str:
    return f"samples[{index}] is a {type(item).__name__} ({item!r:.60}), not a BaseSample"


def _duplicate(sample_id: str) -> str:
    return (
        f"duplicate sample id {sample_id!r}: ids must be unique within a run "
        "(they name the cache and save files)"
    )


def _describe(item: Any) -> str:
    return f"<{type(item).__name__} {item!r:.40}>"
