"""Backends: where samples run. One method, :meth:`Backend.map`.

A backend takes a :class:`Job` and a lazy iterator of ``(index, sample)`` items and
yields one :class:`Outcome` per item, in any order. The contract:

- pull items only when there is room: a bounded number are in flight at once;
- turn every per-sample error into a failed outcome (a worker's traceback kept);
  raise only for the backend itself (:class:`~datamultiproc.ExecutionError`);
- return early, abandoning in-flight items, once ``job.stop`` is set;
- when closed early (``GeneratorExit``) cancel in-flight work and free workers.

Adding a backend: write a class with ``name``, ``workers``, ``in_process`` and ``map`` (see
:class:`ExecutorBackend` for a short one; workers elsewhere can call
:func:`datamultiproc.execution._worker.run_payload`), then add one line to
:func:`resolve_backend`.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextvars
import threading
import uuid
from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any, Protocol

from datamultiproc.core import Processor
from datamultiproc.execution._chunking import ChunkSizer
from datamultiproc.execution._codec import decode_outcomes, encode_pipeline, encode_samples
from datamultiproc.execution._job import Item, Job, Outcome, to_outcome, usable_cores
from datamultiproc.execution._reloads import code_token
from datamultiproc.execution._worker import (
    RawOutcome,
    lost_outcome,
    prepare_pipeline,
    run_payload,
    run_sample,
)

__all__ = ["Backend", "ExecutorBackend", "SerialBackend", "ThreadBackend", "resolve_backend"]

_TARGET_SECONDS = 0.02  # worker time per chunk when chunksize=None, as for backend="process"
_MAX_CHUNK = 1024


class Backend(Protocol):
    """Runs items of a job; see the module docstring for the contract.

    Attributes
    ----------
    name
        Shown in events and results, e.g. ``"process"``.
    workers
        Number of workers.
    in_process
        ``True`` if samples run on the caller's own processor objects (then Cache
        counters are already up to date); ``False`` if workers run copies.
    """

    name: str
    workers: int
    in_process: bool

    def map(self, job: Job, items: Iterator[Item]) -> Iterator[Outcome]:
        """Yield one outcome per item, pulling items lazily."""
        ...


class SerialBackend:
    """Run every sample in the calling process, one after another (debugging, breakpoints).

    Like every backend of :func:`~datamultiproc.run`, it runs on copies of the
    samples (``model_copy(deep=True)``): the caller's samples are never changed.
    """

    name = "sequential"
    workers = 1
    in_process = True  # runs the caller's own processor objects

    def map(self, job: Job, items: Iterator[Item]) -> Iterator[Outcome]:
        """Run items in order in this process."""
        setup_error = prepare_pipeline(job.pipeline)
        params: dict[int, Any] = {}  # parameter texts, built once per processor
        for index, sample in items:
            if job.stop.is_set():
                return
            raw = run_sample(job.pipeline, index, sample, setup_error, params, copy_input=True)
            yield to_outcome(raw, "main")


class ExecutorBackend:
    """Run chunks on a :class:`concurrent.futures.Executor`.

    A ``ThreadPoolExecutor`` runs samples as they are (no pickling; ``setup()`` runs
    once, the threads share the pipeline); any other executor gets pickled payloads.
    Work already running cannot be stopped: ``stop`` and interrupts cancel the rest.

    Parameters
    ----------
    executor
        The executor to submit chunks to.
    workers
        How many tasks it runs at once (executors do not say so publicly); two chunks
        per worker are kept submitted. ``None``: the usable cores.
    owned
        Shut the executor down when the run ends.
    """

    name = "executor"

    def __init__(
        self, executor: cf.Executor, *, workers: int | None = None, owned: bool = False
    ) -> None:
        self.executor = executor
        self.workers = workers if workers is not None else usable_cores()
        self.owned = owned
        self.local = isinstance(executor, cf.ThreadPoolExecutor)
        self.in_process = self.local

    def map(self, job: Job, items: Iterator[Item]) -> Iterator[Outcome]:
        """Keep two chunks per worker submitted; yield outcomes as chunks complete."""
        sizer = ChunkSizer(
            fixed=job.chunksize,
            total=job.total,
            slots=self.workers,
            target_seconds=_TARGET_SECONDS,
            max_chunk=_MAX_CHUNK,
        )
        submit = self._submitter(job, sizer)
        pending: dict[cf.Future[Any], list[Item]] = {}
        try:
            while True:
                while len(pending) < 2 * self.workers and not job.stop.is_set():
                    chunk = list(islice(items, sizer.size()))
                    if not chunk:
                        break
                    sizer.took(len(chunk))
                    pending[submit(chunk)] = chunk
                if not pending or job.stop.is_set():
                    return
                done, _ = cf.wait(pending, timeout=0.05, return_when=cf.FIRST_COMPLETED)
                for future in done:
                    outcomes = list(self._outcomes(future, pending.pop(future)))
                    seconds = sum(s.seconds for o in outcomes for s in o.record.steps)
                    sizer.observe_seconds(seconds, len(outcomes))
                    yield from outcomes
        finally:
            for future in pending:
                future.cancel()
            if self.owned:
                self.executor.shutdown(wait=False, cancel_futures=True)

    def _submitter(self, job: Job, sizer: ChunkSizer) -> Callable[[list[Item]], cf.Future[Any]]:
        if self.local:
            setup_error = prepare_pipeline(job.pipeline)

            def submit_local(chunk: list[Item]) -> cf.Future[Any]:
                # In a copy of the caller's context: its numpy error handling and decimal
                # context (per thread) hold in the pool's threads too.
                context = contextvars.copy_context()
                return self.executor.submit(
                    context.run, _run_local, job.pipeline, chunk, setup_error
                )

            return submit_local
        key, blob = encode_pipeline(job.pipeline)
        code = code_token()  # workers reload user modules changed since (see _reloads)
        run = uuid.uuid4().hex  # workers check setup()'s files once per run

        def submit(chunk: list[Item]) -> cf.Future[Any]:
            payload = encode_samples(chunk)
            sizer.observe_bytes(len(payload), len(chunk))
            return self.executor.submit(run_payload, key, blob, payload, code, run)

        return submit

    def _outcomes(self, future: cf.Future[Any], chunk: list[Item]) -> Iterator[Outcome]:
        try:
            worker, raws = future.result()
        except cf.BrokenExecutor as exc:
            for index, sample in chunk:
                yield to_outcome(lost_outcome(index, sample.id, f"worker died ({exc})"), "?")
            return
        if not self.local:
            raws = decode_outcomes(raws)
        for raw in raws:
            yield to_outcome(raw, worker)


def _run_local(
    pipeline: Processor, chunk: list[Item], setup_error: Any
) -> tuple[str, list[RawOutcome]]:
    worker = f"thread-{threading.current_thread().name}"
    return worker, [
        run_sample(pipeline, index, sample, setup_error, copy_input=True) for index, sample in chunk
    ]


class ThreadBackend(ExecutorBackend):
    """Run samples on threads of this process (for code that releases the GIL).

    Samples are deep-copied before they run, so the caller's samples are never changed.
    """

    name = "thread"

    def __init__(self, workers: int) -> None:
        pool = cf.ThreadPoolExecutor(workers, thread_name_prefix="datamultiproc")
        super().__init__(pool, workers=workers, owned=True)


def resolve_backend(backend: Any, workers: int | None, start_method: str | None) -> Any:
    """Return the backend object for the ``backend=`` argument of :func:`~datamultiproc.run`."""
    # The process and Dask backends are imported when asked for: they load multiprocess
    # and distributed, which `import datamultiproc` does not need.
    count = workers if workers is not None else usable_cores()
    if backend == "process":
        from datamultiproc.execution._multiprocess import MultiprocessBackend

        return MultiprocessBackend(count, start_method)
    if backend == "sequential":
        return SerialBackend()
    if backend == "thread":
        return ThreadBackend(count)
    if isinstance(backend, cf.Executor):
        return ExecutorBackend(backend, workers=workers)
    if backend == "dask" or type(backend).__module__.startswith("distributed"):
        from datamultiproc.execution._dask import dask_backend

        return dask_backend(backend, workers)
    if hasattr(backend, "map") and hasattr(backend, "name"):
        return backend
    msg = (
        "backend must be 'process', 'thread', 'sequential', a concurrent.futures.Executor "
        f"or a Backend, not {backend!r}"
    )
    raise ValueError(msg)
