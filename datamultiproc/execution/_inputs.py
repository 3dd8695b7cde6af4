"""Checking a run's input: every item a sample, every id unique where it matters.

A list or tuple is checked whole before any work starts, and a bad item raises.
Any other iterable is read lazily, one item at a time (no read-ahead: a generator of
large samples holds only the samples in flight): a bad item there becomes a failed
outcome (so the samples already processed are not lost) and is never run.

A lazy input is read ahead (chunks go to workers before they run), so a generator
that refills one object for every sample (a buffer it reuses) would hand every
sample still waiting the last contents: when two consecutive samples hold one
mutable object, :class:`~datamultiproc.exceptions.ReusedInputWarning` says so,
once per run (samples that share an object they never change are fine).

Repeated ids matter where they would overwrite each other's files: a pipeline with a
:class:`~datamultiproc.Cache` or :class:`~datamultiproc.Save` step (a repeated id
there would even be served the first sample's cache entry). For such a pipeline the
ids of a lazy input are checked exactly, against a private temporary SQLite database
whose page cache is capped at :data:`_CACHE_KIB`, so the check takes the same memory
for a thousand samples or a hundred million (the rest lives in a temporary file,
deleted when the run ends). Without storage steps, ids of a lazy input are not checked:
a repeated id overwrites nothing, and remembering every id would grow without bound.
"""

from __future__ import annotations

import sqlite3
import warnings
from collections import deque
from collections.abc import Iterable, Iterator, Sized
from typing import Any

from datamultiproc.core import BaseSample, FailureRecord, SampleRecord
from datamultiproc.exceptions import ReusedInputWarning
from datamultiproc.execution._copies import ATOMIC, immutable
from datamultiproc.execution._job import Item, Outcome

__all__ = ["InputReader"]

_CACHE_KIB = 1024


class InputReader:
    """Iterate over ``(index, sample)`` items of checked input.

    Parameters
    ----------
    samples
        The run's input.
    total
        The number of items of an input without a length, if known (for progress).
    check_ids
        Check that the ids of a lazy input are unique (lists and tuples always are).
    check_reuse
        Warn when consecutive samples of a lazy input hold one mutable object (for
        backends that read ahead).

    Attributes
    ----------
    total
        Number of items when the input has a length, else the ``total`` hint (or ``None``).
    rejected
        Failed outcomes of bad items found while reading lazily.
    lazy
        Whether the input is read lazily (anything but a list or tuple); only then
        can items be rejected as they are read.
    """

    def __init__(
        self,
        samples: Iterable[Any],
        *,
        total: int | None = None,
        check_ids: bool = True,
        check_reuse: bool = True,
    ) -> None:
        self.rejected: deque[Outcome] = deque()
        self.total = len(samples) if isinstance(samples, Sized) else total
        self.lazy = not isinstance(samples, (list, tuple))
        if isinstance(samples, (list, tuple)):
            _check_all(samples)
            self._items: Iterator[Item] = enumerate(samples)
        else:
            self._items = self._read_lazily(iter(samples), check_ids, check_reuse)

    def __iter__(self) -> Iterator[Item]:
        return self._items

    def _read_lazily(
        self, source: Iterator[Any], check_ids: bool, check_reuse: bool
    ) -> Iterator[Item]:
        seen = _SeenIds() if check_ids else None
        reuse = _ReuseCheck() if check_reuse else None
        try:
            for index, item in enumerate(source):
                if not isinstance(item, BaseSample):
                    self._reject(index, _describe(item), "TypeError", _not_a_sample(index, item))
                elif seen is not None and seen.repeated(item.id):
                    self._reject(index, item.id, "ValueError", _duplicate(item.id))
                else:
                    if reuse is not None and reuse.found(item):
                        reuse = None  # once per run
                    yield index, item
        finally:
            if seen is not None:
                seen.close()

    def _reject(self, index: int, sample_id: str, error_type: str, message: str) -> None:
        record = SampleRecord(index, sample_id, "main", "failed", ())
        failure = FailureRecord(index, sample_id, None, error_type, message, message, "main")
        self.rejected.append(Outcome(index, None, record, failure))


class _ReuseCheck:
    """Whether a sample holds a mutable object the sample read before it held too."""

    def __init__(self) -> None:
        self.previous: BaseSample | None = None  # kept alive: its objects' ids stay unique
        self.held: dict[int, str] = {}

    def found(self, sample: BaseSample) -> bool:
        """Note ``sample``; warn and return ``True`` if it shares an object with the last one."""
        held = {}
        for name, value in sample.__dict__.items():
            if type(value) not in ATOMIC and not immutable(value):
                held[id(value)] = name
        shared = next((key for key in held if key in self.held), None)
        if shared is not None and self.previous is not None:
            warnings.warn(
                _reused(self.previous, sample, held[shared], shared),
                ReusedInputWarning,
                stacklevel=2,
            )
            return True
        self.previous, self.held = sample, held
        return False


def _reused(previous: BaseSample, sample: BaseSample, field: str, key: int) -> str:
    kind = type(sample.__dict__[field]).__name__
    return (
        f"samples {previous.id!r} and {sample.id!r} of the input hold the same {kind} object "
        f"(field {field!r}). If the input refills one object for every sample (a generator "
        "reusing a buffer), the samples read ahead but not yet run see only its last "
        "contents, on every backend but 'sequential': yield a new object per sample (e.g. "
        f"{field}.copy()). Samples sharing an object they never change are fine: pass them "
        "as a list, or filter this warning (datamultiproc.exceptions.ReusedInputWarning)."
    )


class _SeenIds:
    """The ids read so far, in a private temporary SQLite database (exact, bounded memory)."""

    def __init__(self) -> None:
        self._db: sqlite3.Connection | None = None

    def repeated(self, sample_id: str) -> bool:
        """Remember ``sample_id``; return whether it was seen before."""
        if self._db is None:
            self._db = _open_id_table()
        try:
            self._db.execute("INSERT INTO ids VALUES (?)", (sample_id,))
        except sqlite3.IntegrityError:
            return True
        return False

    def close(self) -> None:
        """Drop the table and its temporary file."""
        if self._db is not None:
            self._db.close()
            self._db = None


def _open_id_table() -> sqlite3.Connection:
    # "" opens a private on-disk database, deleted on close; it stays in the page cache
    # until that is full. One transaction, never committed: nothing is ever synced.
    db = sqlite3.connect("", check_same_thread=False)
    db.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")
    db.execute("PRAGMA journal_mode = OFF")
    db.execute("PRAGMA synchronous = OFF")
    db.execute("CREATE TABLE ids (id TEXT PRIMARY KEY) WITHOUT ROWID")
    return db


def _check_all(samples: list[Any] | tuple[Any, ...]) -> None:
    if _all_unique_samples(samples):
        return  # the common case; the loop below finds the first bad item to name it
    seen: set[str] = set()
    for index, item in enumerate(samples):
        if not isinstance(item, BaseSample):
            raise TypeError(_not_a_sample(index, item))
        if item.id in seen:
            raise ValueError(_duplicate(item.id))
        seen.add(item.id)


def _all_unique_samples(samples: list[Any] | tuple[Any, ...]) -> bool:
    """Whether every item is a sample and no id repeats, checked at C speed."""
    # isinstance on a pydantic class runs Python code; one issubclass per class does not.
    if not all(issubclass(kind, BaseSample) for kind in set(map(type, samples))):
        return False
    return len({item.id for item in samples}) == len(samples)


def _not_a_sample(index: int, item: Any) -> str:
    return f"samples[{index}] is a {type(item).__name__} ({item!r:.60}), not a BaseSample"


def _duplicate(sample_id: str) -> str:
    return (
        f"duplicate sample id {sample_id!r}: ids must be unique within a run "
        "(they name the cache and save files)"
    )


def _describe(item: Any) -> str:
    return f"<{type(item).__name__} {item!r:.40}>"
