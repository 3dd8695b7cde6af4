"""The process backend: a warm pool of ``multiprocess`` workers fed in adaptive chunks.

The parent keeps up to two chunks per worker in flight (one running, one waiting in
the pipe), so workers never wait for the parent. Chunks start at one sample and
double until a chunk takes about :data:`_TARGET_SECONDS` of worker time, stay under
:data:`_TARGET_BYTES`, and shrink near the end of a known-length input so every
worker finishes at about the same time.

When moving a sample costs the parent more than processing it, the parent runs
samples itself (see ``_inline``); CPU-heavy work goes to the workers (all but a first
run's first sample). Forked workers that this run started then get no more chunks and
exit once they have sent back what they hold (while they live, each page the parent
writes first is copied); the pool remembers the figures, and the next run of the
pipeline starts workers (or sends warm ones samples) only if the parent's first
samples lose against them. A first run (no worker alive) likewise times its first
samples in the parent and starts workers only if moving those samples predicts a
faster pace for them (see ``_firstrun``). Large arrays travel as anonymous memory
files (see ``_transport``).

A worker that dies loses only the sample it was running (read from its progress
slot); the rest of its chunks are retried on other workers, and a fresh worker
takes its slot. A sample over ``timeout`` is failed the same way.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import selectors
import signal
import time
from collections import deque
from collections.abc import Iterator
from typing import Any, NamedTuple

import multiprocess

from datamultiproc.core import BaseSample
from datamultiproc.exceptions import WorkerLostError
from datamultiproc.execution._codec import (
    encode,
    encode_pipeline,
    encode_shared,
    read_message,
    restore_sample,
    sample_state,
)
from datamultiproc.execution._feeder import ChunkFeeder
from datamultiproc.execution._firstrun import encoded_bytes, sets_up
from datamultiproc.execution._inline import ParentRunner
from datamultiproc.execution._job import Item, Job, Outcome, to_outcome
from datamultiproc.execution._policy import InlinePolicy
from datamultiproc.execution._pool import WorkerPool, WorkerProcess, acquire_pool, release_pool
from datamultiproc.execution._transport import send_fds
from datamultiproc.execution._worker import RUN_SHIFT, RawFailure, RawOutcome, lost_outcome

__all__ = ["MultiprocessBackend"]

_DEPTH = 2  # chunks in flight per worker
_TARGET_SECONDS = 0.02
_TARGET_BYTES = 4 << 20
_MAX_CHUNK = 1024
_MAX_ATTEMPTS = 3  # a sample is retried at most this often after its worker died
_POLL_SECONDS = 0.05
# A first run of fewer samples starts its workers at once: starting them costs it only
# milliseconds, and a sample that crashes its process then takes a worker down, not the
# caller (a notebook's kernel) while you try a pipeline out on a few samples.
_FIRST_RUN_SAMPLES = 1000


_RUNS = itertools.count(1)
_MAX_RUNS = 1 << 20  # chunk numbers stay exact in the progress slots' doubles (2**52)


class _Pending(NamedTuple):
    index: int  # type: ignore[assignment]
    sample: BaseSample
    attempts: int


class _Chunk(NamedTuple):
    seq: int
    items: list[_Pending]
    held: tuple[Any, ...] = ()  # buffers the worker reads from this process's memory


class MultiprocessBackend:
    """Run samples in worker processes started with ``multiprocess``.

    Parameters
    ----------
    workers
        Number of worker processes.
    start_method
        ``"fork"``, ``"spawn"`` or ``"forkserver"``; ``None`` for the platform default.
    inline
        ``True`` (default): when samples cost less to process than to move, the
        parent runs them itself (on copies, with a copy of the pipeline); ``False``:
        always use the workers (e.g. for code that may crash the interpreter).
    """

    name = "process"
    in_process = False

    def __init__(
        self, workers: int, start_method: str | None = None, *, inline: bool = True
    ) -> None:
        methods = multiprocess.get_all_start_methods()
        method = start_method or multiprocess.get_start_method()
        if method not in methods:
            msg = f"start_method must be one of {methods} or None, not {start_method!r}"
            raise ValueError(msg)
        self.workers = workers
        self.start_method = method
        self.inline = inline

    def map(self, job: Job, items: Iterator[Item]) -> Iterator[Outcome]:
        """Yield outcomes as chunks come back; see the module docstring."""
        key, blob = encode_pipeline(job.pipeline)
        pool = acquire_pool(self.start_method, self.workers)
        scheduler = _Scheduler(pool, job, items, key, blob, inline=self.inline)
        keep = False
        try:
            yield from scheduler.run()
            keep = not job.stop.is_set()
        except GeneratorExit:
            # Closed early: on_error="raise", or an interrupt (stop is set then).
            keep = not job.stop.is_set()
            scheduler.abandon()
            raise
        finally:
            scheduler.close(keep=keep)
            release_pool(pool, keep=keep)


class _Scheduler:
    """Feeds one pool's workers for one run."""

    def __init__(
        self,
        pool: WorkerPool,
        job: Job,
        items: Iterator[Item],
        key: bytes,
        blob: bytes,
        *,
        inline: bool = True,
    ) -> None:
        self.pool, self.job = pool, job
        self.key, self.blob = key, blob
        self.retry: deque[_Pending] = deque()
        # Chunk numbers carry the run above bit 32: a worker checks the files its
        # pipeline's setup() read once per run (see _worker._WorkerState.ready).
        self.seq = (next(_RUNS) % _MAX_RUNS) << RUN_SHIFT
        self.feeder = ChunkFeeder(
            job,
            items,
            pool.size,
            target_seconds=_TARGET_SECONDS,
            max_chunk=_MAX_CHUNK,
            target_bytes=_TARGET_BYTES,
        )
        self.sizer = self.feeder.sizer
        self.policy = InlinePolicy(enabled=inline and job.timeout is None)
        recalled = pool.recalled.get(key)
        if recalled is not None:
            # Workers start, or warm ones get samples, only if the parent's probe loses.
            self.policy.recall(recalled)
        elif not pool.live() and not sets_up(job.pipeline) and _long_enough(job.total):
            # A first run: workers start only if the parent's probe says they would win.
            self.policy.start_first(pool.size)
        self.policy.keep_quiet(pool.quiet.get(key, 0.0))
        self.parent = ParentRunner(key, blob)
        self.deaths_without_progress = 0
        self.selector = selectors.DefaultSelector()
        self.registered: dict[int, WorkerProcess] = {}

    # -- main loop --------------------------------------------------------------------

    def run(self) -> Iterator[Outcome]:
        for worker in self.pool.live():  # warm workers
            self._register(worker)
        while True:
            if None in self.pool.workers and (self.retry or self._needs_workers()):
                self._fill()  # at the start, or once the parent no longer takes every sample
            self._dispatch()
            if self.feeder.ready:
                yield from self.feeder.take_ready()
            if self.job.stop.is_set() or (self.feeder.exhausted and not self._in_flight()):
                return
            outcomes = self._run_inline()
            if self.policy.active:
                self._retire_young()
            wait = 0.0 if outcomes else _POLL_SECONDS
            for selected, events in self.selector.select(wait):
                self._handle(selected.data, events, outcomes)
            self._check_timeouts(outcomes)
            self._dispatch()
            yield from outcomes

    def _handle(self, data: tuple[str, WorkerProcess], events: int, out: list[Outcome]) -> None:
        kind, worker = data
        if worker.result_fd < 0:
            return  # replaced or retired earlier in this round
        if kind == "task":
            try:
                worker.flush()
            except OSError:
                self._on_death(worker, out)
                return
            self._update_write_interest(worker)
        elif kind == "result":
            try:
                self._receive(worker, read_message(worker.result_fd, worker.channel), out)
            except (EOFError, OSError):
                self._on_death(worker, out)
                return
            if worker.draining and not worker.in_flight:
                self._retire(worker)
        else:
            self._on_death(worker, out)

    def _run_inline(self) -> list[Outcome]:
        size = self.policy.chunk_size()
        if not size or self.job.stop.is_set():
            return []
        if self.sizer.bytes_per_sample:  # the byte cap of chunks holds for inline ones too
            size = min(size, max(1, int(_TARGET_BYTES / self.sizer.bytes_per_sample)))
        items = self.feeder.read(size)
        if not items:
            return []
        self.sizer.took(len(items))
        if not self.sizer.bytes_per_sample:  # no chunk went to a worker yet: cap the next
            self.sizer.observe_bytes(encoded_bytes(items[0]) or 0, 1)
        # The workers keep going only on the chunks they hold: a probe must not outlast
        # those, or they wait for the parent (e.g. on large arrays). The probe of a
        # recalled run comes before any worker gets a sample: no one waits for it.
        live = self.pool.live() if self.policy.needs_workers else []
        queued = sum(len(c.items) for w in live for c in w.in_flight) if live else None
        outcomes = self.parent.run_measured(items, self.policy, queued=queued)
        # Past the deadline: the rest go to the workers.
        self.retry.extend(_Pending(index, sample, 0) for index, sample in items[len(outcomes) :])
        return outcomes

    def _needs_workers(self) -> bool:
        if not self.policy.needs_workers or self.feeder.exhausted:
            return False
        if self.job.total is not None and self.sizer.taken >= self.job.total:
            # A first run's probe may have taken the whole input: look before forking.
            extra = self.feeder.read(1)
            self.retry.extend(_Pending(index, sample, 0) for index, sample in extra)
            self.sizer.took(len(extra))
        return not self.feeder.exhausted or bool(self.retry)

    def _fill(self) -> None:
        self.pool.fill()
        for worker in self.pool.live():
            if worker.slot not in self.registered:
                self._register(worker)

    def _retire_young(self) -> None:
        """Let forked workers started by this run go while the parent takes every sample.

        A forked worker shares the parent's memory pages until either writes to them;
        while it lives, each page the parent writes first is copied, which made a run
        of tiny samples in the parent 1.2 to 1.6 times as slow. Each such worker gets no
        more chunks and exits once it has sent back those it holds. Workers that
        served earlier runs stay (the pages the parent wrote since are its own).
        """
        if self.pool.start_method != "fork" or self.retry:
            return
        for worker in self.pool.live():
            if not worker.runs and not worker.draining and not worker.outbox:
                self._unregister_writes(worker)
                worker.drain()
                if not worker.in_flight:
                    self._retire(worker)

    def _retire(self, worker: WorkerProcess) -> None:
        self._unregister(worker)
        self.pool.retire(worker)

    def _in_flight(self) -> bool:
        return bool(self.retry) or any(w.in_flight for w in self.pool.live())

    # -- sending ----------------------------------------------------------------------

    def _dispatch(self) -> None:
        for depth in range(1, _DEPTH + 1):
            for worker in self.pool.live():
                if len(worker.in_flight) >= depth or worker.draining or self.job.stop.is_set():
                    continue
                chunk = self._next_chunk(new=self.policy.needs_workers)
                if chunk is None:
                    return
                self._send(worker, chunk)

    def _next_chunk(self, *, new: bool = True) -> _Chunk | None:
        size = self.sizer.size(requeued=len(self.retry))
        pending = [self.retry.popleft() for _ in range(min(size, len(self.retry)))]
        fresh = self.feeder.read(size - len(pending)) if new else []
        pending += [_Pending(index, sample, 0) for index, sample in fresh]
        if not pending:
            return None
        self.seq += 1
        self.sizer.took(len(fresh))
        return _Chunk(self.seq, pending)

    def _send(self, worker: WorkerProcess, chunk: _Chunk) -> None:
        states = []
        for item in chunk.items:
            states.append((item.index, sample_state(item.sample)))
        share = worker.channel is not None
        remote = share and self.pool.remote_read
        try:
            pieces, fds, held = encode_shared(
                ("chunk", chunk.seq, self.key, states), worker.classes, share=share, remote=remote
            )
        except Exception:
            chunk = _Chunk(chunk.seq, self.feeder.drop_unpicklable(chunk.items))
            if not chunk.items:
                return
            pieces, fds, held = encode_shared(
                (
                    "chunk",
                    chunk.seq,
                    self.key,
                    [(p.index, sample_state(p.sample)) for p in chunk.items],
                ),
                worker.classes,
                share=share,
                remote=remote,
            )
        size = sum(len(memoryview(piece).cast("B")) for piece in pieces)
        size += sum(os.fstat(fd).st_size for fd in fds)  # shared arrays count too
        size += sum(buffer.nbytes for buffer in held)
        self.sizer.observe_bytes(size, len(chunk.items))
        if self.key not in worker.pipelines:
            worker.pipelines.add(self.key)
            pieces = encode(("pipeline", self.key, self.blob)) + pieces
        worker.in_flight.append(chunk._replace(held=held) if held else chunk)
        # A dead worker's sentinel reports it, and the chunk is retried then.
        with contextlib.suppress(OSError):
            try:
                if fds:  # descriptors first: the worker reads them once the message arrives
                    send_fds(worker.channel, fds)  # type: ignore[arg-type]
            finally:
                for fd in fds:
                    os.close(fd)
            worker.send(pieces)
        self._update_write_interest(worker)

    # -- receiving --------------------------------------------------------------------

    def _receive(self, worker: WorkerProcess, message: Any, out: list[Outcome]) -> None:
        seq, raws, seconds, cpu_seconds = message
        chunk = worker.in_flight.popleft()
        if raws is None:
            # The kernel would not let the worker read this process's memory: from now
            # on large arrays go as memory files, this chunk's first.
            self.pool.remote_read = False
            self.retry.extendleft(reversed(chunk.items))
            self._dispatch()
            return
        assert chunk.seq == seq, (chunk.seq, seq)
        self.sizer.observe_seconds(seconds, len(raws))
        self.policy.observe_results(len(raws), cpu_seconds)
        self.deaths_without_progress = 0
        self._dispatch()  # keep this worker busy before decoding
        name = worker.name
        for raw in raws:  # WireOutcomes: RawOutcome's fields, the sample as a WireState
            _, _, state, _, _ = raw
            out.append(to_outcome(raw, name, None if state is None else restore_sample(state)))

    def _check_timeouts(self, out: list[Outcome]) -> None:
        timeout = self.job.timeout
        if timeout is None:
            return
        now = time.monotonic()
        for worker in self.pool.live():
            if not worker.in_flight:
                continue
            seq, position, started = self.pool.read_progress(worker)
            if position >= 0 and seq == worker.in_flight[0].seq and now - started > timeout:
                message = f"sample exceeded timeout={timeout} s; its worker was stopped"
                self._fail_and_replace(worker, position, "TimeoutError", message, out)

    def _on_death(self, worker: WorkerProcess, out: list[Outcome]) -> None:
        # Results the worker finished writing before it died still count.
        while worker.in_flight and self._readable(worker):
            try:
                self._receive(worker, read_message(worker.result_fd, worker.channel), out)
            except (EOFError, OSError):
                break
        if worker.draining and not worker.in_flight:
            self._retire(worker)  # it sent everything back and exited, as asked
            return
        worker.process.join(1.0)
        code = worker.process.exitcode
        seq, position, _ = self.pool.read_progress(worker)
        if not worker.in_flight or seq != worker.in_flight[0].seq:
            position = -1
        cause = _describe_exit(code)
        # Deaths that resolve a sample are progress; deaths before any sample starts
        # (a broken worker environment) must not repeat forever.
        self.deaths_without_progress = 0 if position >= 0 else self.deaths_without_progress + 1
        if self.deaths_without_progress > 2 * self.pool.size + 2:
            msg = f"workers keep dying before finishing any sample (last one: {cause})"
            raise WorkerLostError(msg)
        self._fail_and_replace(worker, position, "WorkerLostError", f"worker died ({cause})", out)

    def _fail_and_replace(
        self,
        worker: WorkerProcess,
        position: int,
        error_type: str,
        message: str,
        out: list[Outcome],
    ) -> None:
        chunks = list(worker.in_flight)
        worker.in_flight.clear()
        self._unregister(worker)
        self.pool.replace(worker)
        self._register(self.pool.workers[worker.slot])
        for number, chunk in enumerate(chunks):
            for place, item in enumerate(chunk.items):
                if number == 0 and place == position:
                    failure = RawFailure(None, error_type, message, message)
                    raw = RawOutcome(item.index, item.sample.id, None, (), failure)
                    out.append(to_outcome(raw, worker.name))
                elif number == 0 and position < 0 and item.attempts + 1 >= _MAX_ATTEMPTS:
                    lost = f"{message}; gave up after {_MAX_ATTEMPTS} attempts"
                    out.append(
                        to_outcome(lost_outcome(item.index, item.sample.id, lost), worker.name)
                    )
                else:
                    tried = item.attempts + (number == 0 and position < 0)
                    self.retry.append(item._replace(attempts=tried))

    # -- bookkeeping --------------------------------------------------------------------

    def _register(self, worker: WorkerProcess | None) -> None:
        assert worker is not None
        self.selector.register(worker.result_fd, selectors.EVENT_READ, ("result", worker))
        self.selector.register(worker.process.sentinel, selectors.EVENT_READ, ("death", worker))
        self.registered[worker.slot] = worker

    def _unregister(self, worker: WorkerProcess) -> None:
        for fd in (worker.result_fd, worker.process.sentinel, worker.task_fd):
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(fd)
        self.registered.pop(worker.slot, None)

    def _unregister_writes(self, worker: WorkerProcess) -> None:
        if worker.task_fd >= 0 and worker.task_fd in self.selector.get_map():
            self.selector.unregister(worker.task_fd)

    def _update_write_interest(self, worker: WorkerProcess) -> None:
        if worker.task_fd < 0:
            return
        registered = worker.task_fd in self.selector.get_map()
        if worker.outbox and not registered:
            self.selector.register(worker.task_fd, selectors.EVENT_WRITE, ("task", worker))
        elif not worker.outbox and registered:
            self.selector.unregister(worker.task_fd)

    def _readable(self, worker: WorkerProcess) -> bool:
        probe = selectors.DefaultSelector()
        try:
            probe.register(worker.result_fd, selectors.EVENT_READ)
            return bool(probe.select(0))
        finally:
            probe.close()

    def abandon(self) -> None:
        """Kill workers that hold chunks of this run; idle ones stay warm."""
        for worker in self.pool.live():
            if worker.in_flight or worker.outbox:
                self._unregister(worker)
                worker.kill()
                self.pool.workers[worker.slot] = None

    def close(self, *, keep: bool = True) -> None:
        """End of the run; with ``keep``, remember how it ended for the next run of its pipeline."""
        self.selector.close()
        if keep:
            self.pool.remember(self.key, self.policy.figures(), self.policy.quiet_until())
        else:
            self.pool.remember(self.key, None)
        # A sample interrupted in the parent may have left its pipeline copy half-way.
        self.parent.release(keep=keep)


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "exit code unknown"
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


def _long_enough(total: int | None) -> bool:
    """Whether a first run may try the parent before starting workers (see above)."""
    return total is None or total >= _FIRST_RUN_SAMPLES
