"""What the backends that send chunks share: reading the input, and refusing unpicklable samples.

:class:`ChunkFeeder` reads a run's items in chunks whose size a
:class:`~datamultiproc.execution._chunking.ChunkSizer` chooses, and fails the samples
that cannot be pickled in the parent, so the rest of their chunk still goes out. The
process backend (``_multiprocess``) and the Dask backend (``_dask``) each keep one per
run; how they send chunks and read results back is their own.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any, TypeVar

import cloudpickle

from datamultiproc.execution._chunking import ChunkSizer
from datamultiproc.execution._codec import describe_unpicklable, sample_state
from datamultiproc.execution._job import Item, Job, Outcome, to_outcome
from datamultiproc.execution._worker import RawFailure, RawOutcome

__all__ = ["ChunkFeeder"]

_T = TypeVar("_T", bound=tuple[Any, ...])


class ChunkFeeder:
    """One run's input, read in chunks of adaptive size.

    Parameters
    ----------
    job
        The run: its ``chunksize`` and ``total`` set up the sizer.
    items
        The ``(index, sample)`` items of the run, read lazily.
    slots
        Number of workers (or worker threads) the chunks are spread over.
    target_seconds, max_chunk, target_bytes
        The backend's chunk targets; see :class:`ChunkSizer`.

    Attributes
    ----------
    sizer
        Chooses chunk sizes; the backend reports measured seconds and bytes to it.
    ready
        Outcomes made in the parent (samples that cannot be pickled), not yet yielded.
    exhausted
        Whether every item has been read.
    """

    def __init__(
        self,
        job: Job,
        items: Iterator[Item],
        slots: int,
        *,
        target_seconds: float,
        max_chunk: int,
        target_bytes: int,
    ) -> None:
        self.items = items
        self.ready: list[Outcome] = []
        self.exhausted = False
        self.sizer = ChunkSizer(
            fixed=job.chunksize,
            total=job.total,
            slots=slots,
            target_seconds=target_seconds,
            max_chunk=max_chunk,
            target_bytes=target_bytes,
        )

    def read(self, size: int) -> list[Item]:
        """Read up to ``size`` items; fewer means the input is used up."""
        if self.exhausted or size <= 0:
            return []
        chunk = list(itertools.islice(self.items, size))
        self.exhausted = len(chunk) < size
        return chunk

    def take_ready(self) -> list[Outcome]:
        """Return the outcomes made in the parent since the last call."""
        ready, self.ready = self.ready, []
        return ready

    def drop_unpicklable(self, items: list[_T]) -> list[_T]:
        """Return the items whose samples pickle; fail the others into :attr:`ready`.

        An item is ``(index, sample, ...)``: an ``Item`` or a backend's own record of one.
        """
        kept = []
        for item in items:
            index, sample = item[0], item[1]
            try:
                cloudpickle.dumps(sample_state(sample), protocol=5)
            except Exception as exc:
                error = str(describe_unpicklable(sample, exc))
                failure = RawFailure(None, "NotPicklableError", error, error)
                self.ready.append(
                    to_outcome(RawOutcome(index, sample.id, None, (), failure), "main")
                )
            else:
                kept.append(item)
        return kept
