"""The Dask backend: run chunks of samples as tasks on a ``distributed`` cluster.

``distributed`` is imported only when this backend is asked for, and is an extra:
``pip install "datamultiproc[dask]"``.

How a run goes:

- The pipeline is pickled once (cloudpickle, so classes from a notebook's ``__main__``
  travel by value) and registered as a worker plugin. The scheduler hands the plugin
  to every worker, including workers that join or restart later; tasks carry only the
  plugin's name and their samples.
- Classes that cannot be imported by name (defined in a notebook) travel once per
  cluster: the first chunk that holds one carries it by value, and the parent then
  registers it with every worker, present and future, through a
  :class:`ClassTablePlugin`; later chunks, and results coming back, name it by a token.
- On its first chunk a worker process checks that the Cache and Save directories are
  writable and calls ``pipeline.setup()``, once per process (worker-side code is
  :func:`~datamultiproc.execution._worker.run_payload`, shared with executor backends,
  called from :mod:`._dask_worker`), then takes what is alive out of garbage
  collections (``gc.freeze()``), as process workers do.
- The parent keeps at most two chunks per worker thread in flight (one until the first
  chunk is back), adding a chunk as one finishes (``distributed.as_completed``), so a
  long generator is read lazily; workers get their next chunks before the parent
  decodes the results that came back. Chunks start at one sample; once a chunk has
  come back, they take the size its measured time allows (about
  :data:`_TARGET_SECONDS` of worker time each, at most :data:`_MAX_CHUNK` samples)
  instead of doubling one round trip at a time, and near the end of the input they
  shrink no further than :data:`_MIN_SECONDS` of work, since each task costs a few
  milliseconds of CPU in the client and the worker.
- A worker that dies is Dask's business: the scheduler reruns its tasks elsewhere, up
  to ``distributed.scheduler.allowed-failures`` times, then fails the task with
  ``KilledWorker``. The samples of such a chunk are then rerun one at a time with
  nothing else of the run in flight, so the sample that kills its worker ends as a
  failure record and its chunk-mates complete.
- When moving a sample costs more than processing it, the client runs samples itself,
  as the process backend's parent does (see :mod:`._dask_inline`): never for pipelines
  with Cache or Save steps, never with ``inline=False``, and only once the workers'
  first chunks of the run are back.
"""

from __future__ import annotations

import contextlib
import gc
import pickle
import threading
import traceback
import uuid
import weakref
from collections import deque
from collections.abc import Iterator
from typing import Any, NamedTuple

import cloudpickle

from datamultiproc.core import Processor, walk
from datamultiproc.exceptions import ExecutionError, MissingDependencyError
from datamultiproc.execution._codec import (
    classes_by_token,
    encode_pipeline,
    encode_samples,
    restore_sample,
)
from datamultiproc.execution._dask_inline import ClientShare
from datamultiproc.execution._dask_worker import ClassTablePlugin, PipelinePlugin, run_chunk
from datamultiproc.execution._feeder import ChunkFeeder
from datamultiproc.execution._job import Item, Job, Outcome, to_outcome, usable_cores
from datamultiproc.execution._reloads import code_token
from datamultiproc.execution._worker import RawFailure, RawOutcome

__all__ = ["DaskBackend", "dask_backend"]

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


def dask_backend(backend: Any, workers: int | None) -> DaskBackend:
    """Return the backend for ``backend="dask"`` or a ``distributed.Client``."""
    return DaskBackend(None if isinstance(backend, str) else backend, workers=workers)


class DaskBackend:
    """Run samples on the workers of a Dask ``distributed`` cluster.

    Parameters
    ----------
    client
        A ``distributed.Client``; ``None`` (default) uses the current client
        (``distributed.get_client()``).
    workers
        At most this many chunks run at once; ``None`` (default): one per worker thread
        of the cluster when the run starts.
    inline
        ``True`` (default): when samples cost less to process than to move to a worker,
        the client runs them itself, as ``MultiprocessBackend(inline=True)`` does (on
        copies, with a copy of the pipeline; their records name the worker
        ``"parent"``), once the workers' first chunks of the run are back and unless a
        worker died during the run. Never for a pipeline with Cache or Save steps (the
        client may not see the cluster's directories). ``False``: every sample on the
        cluster (e.g. for code that may crash the interpreter).

    Raises
    ------
    MissingDependencyError
        If ``distributed`` is not installed.
    ValueError
        If there is no current client, or the client is asynchronous.

    Examples
    --------
    >>> from distributed import Client  # doctest: +SKIP
    >>> from datamultiproc.execution import DaskBackend  # doctest: +SKIP
    >>> backend = DaskBackend(Client(), inline=False)  # doctest: +SKIP
    >>> result = pipeline.run(samples, backend=backend)  # doctest: +SKIP
    """

    name = "dask"

    def __init__(
        self, client: Any = None, *, workers: int | None = None, inline: bool = True
    ) -> None:
        distributed = _import_distributed()
        if client is None:
            try:
                client = distributed.get_client()
            except ValueError as exc:
                msg = (
                    "backend='dask' needs a running distributed.Client: create one first "
                    "(client = distributed.Client() for a local cluster, or "
                    "Client('tcp://scheduler:8786')), or pass it as backend=client"
                )
                raise ValueError(msg) from exc
        if not isinstance(client, distributed.Client):
            msg = f"backend must be 'dask' or a distributed.Client, not {client!r}"
            raise TypeError(msg)
        if client.asynchronous:
            msg = "backend=client needs a synchronous distributed.Client, not asynchronous=True"
            raise ValueError(msg)
        self.client = client
        threads = sum(client.nthreads().values())
        self.workers = workers or threads or usable_cores()
        self.inline = inline

    def map(self, job: Job, items: Iterator[Item]) -> Iterator[Outcome]:
        """Yield outcomes as chunks complete; see the module docstring."""
        if job.timeout is not None:
            msg = "timeout= is not supported with backend='dask': Dask cannot stop a running task"
            raise ValueError(msg)
        key, blob = encode_pipeline(job.pipeline)
        directories = tuple(sorted(storage_directories(job.pipeline)))
        plugin = PipelinePlugin(
            f"datamultiproc-{key.hex()[:8]}-{uuid.uuid4().hex[:8]}",
            key,
            blob,
            directories,
            code_token(),  # workers reload user modules changed since (see _reloads)
        )
        try:
            self.client.register_plugin(plugin, name=plugin.name)
        except Exception as exc:
            msg = (
                f"the Dask workers cannot load the pipeline ({type(exc).__name__}: {exc}); "
                "install datamultiproc and the pipeline's dependencies on every worker"
            )
            raise ExecutionError(msg) from exc
        # The client may not see the cluster's Cache and Save directories.
        share = ClientShare(
            self.client,
            key,
            blob,
            enabled=self.inline and not directories,
            target_bytes=_TARGET_BYTES,
        )
        feeder = _Feeder(self.client, job, items, plugin.name, self.workers, share)
        feeder.known = _known_classes(self.client)
        keep = False
        try:
            yield from feeder.run()
            keep = not job.stop.is_set()
        except GeneratorExit:
            keep = not job.stop.is_set()  # closed early: on_error="raise", or a Stop
            raise
        finally:
            feeder.cancel()
            # A sample interrupted in the client may have left its pipeline copy half-way.
            share.close(keep=keep)
            # In the background: the run's results are all in, and waiting for every
            # worker to drop the plugin would add a round trip to each run.
            threading.Thread(
                target=_unregister, args=(self.client, plugin.name), daemon=True
            ).start()


def _unregister(client: Any, name: str) -> None:
    # Best effort: the cluster may be gone; the plugin then went with it.
    with contextlib.suppress(Exception):
        client.unregister_worker_plugin(name)


# Tokens of the classes registered with each client's workers, kept across runs.
_REGISTERED: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()


def _known_classes(client: Any) -> set[str]:
    return _REGISTERED.setdefault(client, set())


def storage_directories(pipeline: Processor) -> set[str]:
    """Return the directories (Cache and Save ones) a pipeline's steps write to."""
    return {directory for step, _ in walk(pipeline) for directory in step.storage_directories()}


class _Chunk(NamedTuple):
    items: list[Item]
    alone: bool  # run with nothing else of this run in flight


class _Feeder:
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


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:
        msg = "backend='dask' needs the 'distributed' package: pip install \"datamultiproc[dask]\""
        raise MissingDependencyError(msg) from exc
    return distributed
