"""One run on the Dask backend: chunks submitted in a window, finished tasks turned into outcomes.

See :mod:`._dask` for how a run goes; :class:`DaskFeeder` is its loop. Between
rounds it lets the client run its share of the samples (:mod:`._dask_inline`).
"""

from __future__ import annotations

import contextlib
import gc
import pickle
import traceback
import uuid
from collections import deque
from collections.abc import Iterator
from typing import Any, NamedTuple

import cloudpickle

from datamultiproc.exceptions import ExecutionError
from datamultiproc.execution._codec import classes_by_token, encode_samples, restore_sample
from datamultiproc.execution._dask_inline import ClientShare
from datamultiproc.execution._dask_worker import ClassTablePlugin, run_chunk
from datamultiproc.execution._feeder import ChunkFeeder
from datamultiproc.execution._job import Item, Job, Outcome, to_outcome
from datamultiproc.execution._worker import RawFailure, RawOutcome

__all__ = ["DaskFeeder"]

_DEPTH = 2  # chunks in flight per worker thread
_TARGET_SECONDS = 0.1  # a Dask task costs a few milliseconds of CPU, client and worker
_TARGET_BYTES = 4 << 20
_MIN_SECONDS = 0.02  # the tail's chunks: smaller ones cost more in round trips than they balance
# Bounds the samples rerun one by one after a KilledWorker. A task costs a few ms of CPU
# in the client (which hosts a LocalCluster's scheduler) and in the worker: chunks of
# tiny samples must be large for that to matter little.
_MAX_CHUNK = 4096
_WAIT_SECONDS = 0.1  # how often a waiting run looks at its stop flag
# Worker time of a chunk while the client may still take part: large enough that a task's
# fixed cost does not hide the workers' pace, small enough that the first chunks do not
# carry much of the input away before the client's probe.
_MEASURE_SECONDS = 0.02


class _Chunk(NamedTuple):
    items: list[Item]
    alone: bool  # run with nothing else of this run in flight


class DaskFeeder:
    """Submits one run's chunks in a window and turns finished tasks into outcomes."""

    def __init__(
        self,
        client: Any,
        job: Job,
        items: Iterator[Item],
        plugin: str,
        slots: int,
        share: ClientShare,
    ) -> None:
        from distributed import as_completed

        tracker: Any = as_completed  # untyped; one per run
        self.client, self.job, self.plugin = client, job, plugin
        self.slots, self.window = slots, _DEPTH * slots
        self.done: Any = tracker(loop=client.loop, with_results=True, raise_errors=False)
        self.pending: dict[Any, _Chunk] = {}
        self.suspects: deque[Item] = deque()  # samples of chunks whose workers died
        self.known: set[str] = set()  # tokens of classes every worker has (ClassTablePlugin)
        self.seq = 0
        self.measured = 0  # samples in the largest chunk measured so far
        self.feeder = ChunkFeeder(
            job,
            items,
            slots,
            target_seconds=_TARGET_SECONDS,
            max_chunk=_MAX_CHUNK,
            target_bytes=_TARGET_BYTES,
        )
        self.sizer = self.feeder.sizer
        self.sizer.min_seconds = _MIN_SECONDS
        self.share = share

    def run(self) -> Iterator[Outcome]:
        """Yield outcomes until the input is used up and every chunk is back."""
        while True:
            self._fill()
            if self.feeder.ready:
                yield from self.feeder.take_ready()
            if self.job.stop.is_set():
                return
            inline = self.share.run(self.feeder, sum(len(c.items) for c in self.pending.values()))
            if not inline and not self.pending:
                if self.feeder.exhausted and not self.share.leftovers:
                    return
                continue
            finished = []
            for future, result in self._wait(block=not inline):
                chunk = self.pending.pop(future)
                if future.status == "finished":
                    label, blob, seconds, cpu_seconds = result
                    self._observe(seconds, cpu_seconds, len(chunk.items))
                    finished.append((blob, label))
                else:
                    yield from self._failed(chunk, result)
            self._fill()  # the workers get their next chunks before the parent decodes
            for blob, label in finished:
                yield from _decoded(blob, label)
            yield from inline

    def cancel(self) -> None:
        """Cancel chunks not yet finished (running ones finish, unseen, on their workers)."""
        if self.pending:
            with contextlib.suppress(Exception):
                self.client.cancel(list(self.pending), force=True)
            self.pending.clear()

    # -- sending ---------------------------------------------------------------------------

    def _fill(self) -> None:
        while not self.job.stop.is_set():
            if self.suspects:
                if not self.pending:
                    self._submit(_Chunk([self.suspects.popleft()], alone=True))
                    continue
                return
            # Until a chunk is back, one per worker thread: the first ones are tiny, and
            # each task costs milliseconds of CPU in the client and the worker.
            window = self.window if self.measured else self.slots
            new = not self.share.takes_new and not self.feeder.exhausted
            if len(self.pending) >= window or not (new or self.share.leftovers):
                return
            chunk = self._next_chunk(new=new)
            if chunk:
                self._submit(_Chunk(chunk, alone=False))

    def _next_chunk(self, *, new: bool) -> list[Item]:
        # While the client may take part, chunks stay small enough for it to decide
        # before most of the input went to the workers.
        measuring = self.share.measuring
        self.sizer.target_seconds = _MEASURE_SECONDS if measuring else _TARGET_SECONDS
        size = self.sizer.size(requeued=len(self.share.leftovers))
        chunk = self.share.take_leftovers(size)
        fresh = self.feeder.read(size - len(chunk)) if new else []
        self.sizer.took(len(fresh))
        return chunk + fresh

    def _submit(self, chunk: _Chunk) -> None:
        known = set(self.known)
        try:
            payload = encode_samples(chunk.items, known)
        except Exception:
            chunk = chunk._replace(items=self.feeder.drop_unpicklable(chunk.items))
            if not chunk.items:
                return
            known = set(self.known)
            payload = encode_samples(chunk.items, known)
        if known != self.known:
            self._register_classes(known - self.known)
        self.sizer.observe_bytes(len(payload), len(chunk.items))
        self.seq += 1
        future = self.client.submit(
            run_chunk, self.plugin, payload, key=f"{self.plugin}-{self.seq}", pure=False
        )
        self.pending[future] = chunk
        self.done.add(future)

    def _register_classes(self, tokens: set[str]) -> None:
        # This chunk carries the new classes by value; from now on every worker has them.
        plugin = ClassTablePlugin(
            f"datamultiproc-classes-{uuid.uuid4().hex[:12]}",
            cloudpickle.dumps(list(classes_by_token(tokens).items()), protocol=5),
        )
        try:
            self.client.register_plugin(plugin, name=plugin.name)
        except Exception:
            return
        self.known |= tokens

    # -- receiving -------------------------------------------------------------------------

    def _wait(self, *, block: bool) -> list[tuple[Any, Any]]:
        # Wait on as_completed's own condition, so that a Stop is noticed while waiting.
        condition = self.done.thread_condition
        with condition:
            while block and not self.done.has_ready() and not self.job.stop.is_set():
                condition.wait(_WAIT_SECONDS)
        if not self.done.has_ready():
            return []
        return self.done.next_batch(block=False)  # type: ignore[no-any-return]

    def _observe(self, seconds: float, cpu_seconds: float, samples: int) -> None:
        if self.sizer.fixed or seconds >= _MEASURE_SECONDS / 4:
            # The first chunks, of a few tiny samples each, measure a task's fixed costs:
            # the pace they set would be far slower than the workers' with full chunks.
            self.share.observe(samples, cpu_seconds)
        if samples >= 4 * self.measured:
            # A chunk's fixed costs weigh less the more samples it holds: the first
            # chunk much larger than all before it measures a sample better than they did.
            self.sizer.seconds_per_sample = None
            self.measured = samples
        self.sizer.observe_seconds(seconds, samples)
        # Measured: the time target limits chunks from now on. Doubling one round trip
        # of a few milliseconds at a time would take ten of them to reach full size.
        self.sizer.growth_limit = self.sizer.max_chunk

    def _failed(self, chunk: _Chunk, result: Any) -> Iterator[Outcome]:
        from distributed import CancelledError, KilledWorker

        if isinstance(result, CancelledError):
            msg = f"Dask cancelled a task of this run ({result}); was the cluster restarted?"
            raise ExecutionError(msg)
        _, exc, tb = result
        if isinstance(exc, KilledWorker):
            self.share.worker_died()
        if isinstance(exc, KilledWorker) and not chunk.alone:
            self.suspects.extend(chunk.items)  # rerun one by one: find the sample at fault
            return
        failure = _describe_task_error(exc, tb, chunk.alone)
        for index, sample in chunk.items:
            yield to_outcome(RawOutcome(index, sample.id, None, (), failure), "dask")


def _decoded(blob: bytes, label: str) -> list[Outcome]:
    # Unpickling a chunk makes many objects that all survive: collecting them while they
    # pile up only costs time (no user code runs here).
    enabled = gc.isenabled()
    gc.disable()
    try:
        # One pass, as the process backend does (decode_outcomes would build each tuple twice).
        return [
            to_outcome(raw, label, None if raw[2] is None else restore_sample(raw[2]))
            for raw in pickle.loads(blob)
        ]
    finally:
        if enabled:
            gc.enable()


def _describe_task_error(exc: BaseException, tb: Any, alone: bool) -> RawFailure:
    from distributed import KilledWorker

    if isinstance(exc, KilledWorker) and alone:
        message = (
            "worker died: every Dask worker that ran this sample died "
            f"(KilledWorker: {exc}; the limit is distributed.scheduler.allowed-failures)"
        )
        return RawFailure(None, "WorkerLostError", message, message)
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    return RawFailure(getattr(exc, "processor", None), type(exc).__name__, str(exc), text)
