"""run() and imap(): execute a pipeline over many samples on a backend.

The runner checks the input, resolves the backend and the progress display, feeds
the backend lazily and turns its outcomes into events, a :class:`RunResult` or a
stream of samples. Interrupts: a Stop button (the progress sink's ``stop`` event)
ends the run early and *returns* what finished, with status ``"interrupted"``;
Ctrl-C (``KeyboardInterrupt``) stops the workers too, then *raises*, as any
interrupted call does. Either way no new sample starts, the workers are shut down
and finished cache entries stay valid, so a rerun resumes from the cache.
"""

from __future__ import annotations

import contextlib
import gc
import inspect
import operator
import threading
import time
import weakref
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any, Literal, TypeVar

from datamultiproc.core import BaseSample, FailureRecord, FunctionStep, Processor, StepRecord, walk
from datamultiproc.exceptions import (
    FailuresWarning,
    NotPicklableError,
    ProcessingError,
    WorkerLostError,
)
from datamultiproc.execution._backends import resolve_backend
from datamultiproc.execution._events import (
    ProgressSink,
    RunEvent,
    RunFinished,
    RunStarted,
    RunStatus,
    SampleFinished,
)
from datamultiproc.execution._inputs import InputReader
from datamultiproc.execution._interrupts import stopped_on_interrupt
from datamultiproc.execution._iterator import RunIterator, warn_at_caller
from datamultiproc.execution._job import Job, Outcome
from datamultiproc.execution._options import OnError, ProgressOption, RunOptions
from datamultiproc.execution._result import RunResult
from datamultiproc.execution._services import create_display
from datamultiproc.storage import begin_run
from datamultiproc.storage._plan import reasons_before_run, settle_reasons

__all__ = ["imap", "run"]

SampleT = TypeVar("SampleT", bound=BaseSample)


def run(
    pipeline: Processor | Callable[[Any], Any],
    samples: Iterable[SampleT],
    *,
    workers: int | None = None,
    backend: Any = "process",
    start_method: str | None = None,
    progress: ProgressOption = True,
    on_error: OnError = "collect",
    chunksize: int | None = None,
    timeout: float | None = None,
    total: int | None = None,
) -> RunResult[SampleT]:
    """Run ``pipeline`` over ``samples`` in parallel and return every result.

    Parameters
    ----------
    pipeline
        A :class:`~datamultiproc.Processor` or :class:`~datamultiproc.Compose`
        (a plain function ``f(sample) -> sample`` is accepted too).
    samples
        Any iterable of samples, generators included; read lazily, with a bounded
        number in flight. Ids must be unique: checked before any work for a list or
        tuple, and for other inputs when the pipeline has a Cache or Save step (a
        repeated id there becomes a failure); without one, a repeated id in a generator
        overwrites nothing and is not checked.
    workers
        Number of workers; ``None`` (default) uses every usable core. With an
        Executor as ``backend``, say how many tasks it runs at once (default: the
        usable cores); two chunks per worker are kept submitted.
    backend
        ``"process"`` (default: worker processes, built on ``multiprocess``),
        ``"thread"``, ``"sequential"`` (in this process, for debugging),
        ``"dask"`` (the current ``distributed`` client; needs the ``dask`` extra),
        a ``distributed.Client``, or any :class:`concurrent.futures.Executor`.
    start_method
        ``"fork"``, ``"spawn"`` or ``"forkserver"`` for ``backend="process"``;
        ``None`` (default) uses the platform's default (``multiprocess.get_start_method()``).
        Classes defined in a notebook work with each of them.
    progress
        ``True``/``"auto"`` (default: a widget in a notebook, text otherwise),
        ``"widget"``, ``"text"``, ``False``, or a :class:`ProgressSink` (which can
        stop the run with :attr:`RunStarted.stop`).
    on_error
        ``"collect"`` (default): record failed samples, carry on, warn once at the
        end; ``"skip"``: the same without the warning; ``"raise"``: stop at the first
        failure and raise it.
    chunksize
        Samples sent to a worker at once; ``None`` (default) adapts it to the work.
    timeout
        Seconds one sample may take (``backend="process"``); a sample over it fails
        and its worker is replaced. ``None`` (default): no limit.
    total
        How many samples the input holds, for the progress display (bar, time
        left) when the input has no ``len()``, e.g. a generator. ``None``
        (default): ``len(samples)`` where it exists. A hint only: the whole
        input is processed either way.

    Returns
    -------
    RunResult
        Samples in input order (failed ones left out), failure and step records,
        status and wall time.

    Raises
    ------
    TypeError, ValueError
        For a bad argument, or a list/tuple input holding a non-sample or a repeated id.
    ProcessingError
        With ``on_error="raise"``: the first failure, the worker's traceback as ``__cause__``.
    NotPicklableError
        If the pipeline cannot be sent to worker processes.
    KeyboardInterrupt
        On Ctrl-C, after the workers are stopped.

    Examples
    --------
    >>> from datamultiproc import BaseSample, Processor
    >>> class Sample(BaseSample):
    ...     data: int
    >>> class AddOne(Processor):
    ...     def process(self, sample):
    ...         sample.data += 1
    ...         return sample
    >>> result = run(AddOne(), [Sample(id="a", data=1)], backend="sequential", progress=False)
    >>> [s.data for s in result], result.status
    ([2], 'complete')
    """
    options = RunOptions(
        workers=workers,
        backend=backend,
        start_method=start_method,
        progress=progress,
        on_error=on_error,
        chunksize=chunksize,
        timeout=timeout,
        total=total,
    )
    session = _Session(pipeline, samples, options)
    before = reasons_before_run(session.job.pipeline)  # new configurations, before entries appear
    started = time.perf_counter()
    with _gc_paused(session.backend.name in ("process", "dask")):
        outcomes = sorted(session.outcomes(), key=_index)
    result: RunResult[SampleT] = RunResult(
        samples=[o.sample for o in outcomes if o.failure is None],  # type: ignore[misc]
        failures=[o.failure for o in outcomes if o.failure is not None],
        records=settle_reasons([o.record for o in outcomes], before),
        status=session.status,
        wall_seconds=time.perf_counter() - started,
        backend=session.backend.name,
        workers=session.backend.workers,
        options=options,
    )
    _update_cache_stats(session.backend, session.job.pipeline, result)
    return result


def imap(
    pipeline: Processor | Callable[[Any], Any],
    samples: Iterable[SampleT],
    *,
    ordered: bool = True,
    workers: int | None = None,
    backend: Any = "process",
    start_method: str | None = None,
    progress: ProgressOption = True,
    on_error: OnError = "collect",
    chunksize: int | None = None,
    timeout: float | None = None,
    total: int | None = None,
) -> RunIterator[SampleT]:
    """Run ``pipeline`` over ``samples`` lazily, yielding processed samples.

    Takes the options of :func:`run`, plus ``ordered``: ``True`` (default) yields
    samples in input order, ``False`` as they finish. Failed samples are left out
    (``on_error`` as in :func:`run`). Input is read only as results are consumed:
    while the consumer pauses, at most a few chunks per worker are in flight.

    Returns
    -------
    RunIterator
        The processed samples. Once exhausted, its ``failures`` and ``status``
        say what failed (``on_error="collect"`` warns and names them).
    """
    options = RunOptions(
        workers=workers,
        backend=backend,
        start_method=start_method,
        progress=progress,
        on_error=on_error,
        chunksize=chunksize,
        timeout=timeout,
        ordered=ordered,
        total=total,
    )
    session = _Session(pipeline, samples, options, kind="imap")
    stream = _in_order(session.outcomes()) if options.ordered else _samples(session.outcomes())
    return RunIterator(stream, session)


def _samples(outcomes: Iterator[Outcome]) -> Iterator[Any]:
    for outcome in outcomes:
        if outcome.failure is None:
            yield outcome.sample


def _in_order(outcomes: Iterator[Outcome]) -> Iterator[Any]:
    waiting: dict[int, Outcome] = {}
    head = 0
    for outcome in outcomes:
        waiting[outcome.index] = outcome
        while head in waiting:
            ready = waiting.pop(head)
            head += 1
            if ready.failure is None:
                yield ready.sample
    # An interrupted run leaves gaps: yield what arrived, in order.
    for index in sorted(waiting):
        if waiting[index].failure is None:
            yield waiting[index].sample


class _Session:
    """One run: checked options, the backend's outcome stream, events and status."""

    def __init__(
        self,
        pipeline: Any,
        samples: Iterable[Any],
        options: RunOptions,
        kind: Literal["run", "imap"] = "run",
    ) -> None:
        begin_run()  # cache keys read data afresh once per run
        self.kind = kind
        self.failures: list[FailureRecord] = []
        self.on_error: OnError = options.on_error
        self.backend = resolve_backend(options.backend, options.workers, options.start_method)
        if options.timeout is not None and self.backend.name in (
            "sequential",
            "thread",
            "executor",
            "dask",
        ):
            msg = f"timeout= needs backend='process'; backend {self.backend.name!r} cannot stop a sample"
            raise ValueError(msg)
        pipeline = _as_pipeline(pipeline)
        self.reader = InputReader(
            samples,
            total=options.total,
            check_ids=_stores_files(pipeline),
            # The sequential backend copies each sample before reading the next one.
            check_reuse=self.backend.name != "sequential",
        )
        self.job = Job(
            pipeline=pipeline,
            stop=threading.Event(),
            timeout=options.timeout,
            chunksize=options.chunksize,
            total=self.reader.total,
        )
        self.sink = _resolve_sink(options.progress, self.job.stop)
        self.status: RunStatus = "complete"
        self.done = self.failed = 0
        self._generator: Callable[[], Generator[Outcome, None, None] | None] = _no_generator

    def outcomes(self) -> Iterator[Outcome]:
        """Yield outcomes in completion order, emitting events; see the module docstring."""
        generator = self._outcomes()
        self._generator = weakref.ref(generator)
        return generator

    def _stop_now(self) -> None:
        """Stop on Ctrl-C, called from the signal handler (see :mod:`._interrupts`).

        Inside ``next()`` the ``KeyboardInterrupt`` that follows stops the run; in the
        body of the consumer's loop, the suspended generator is closed here, which stops
        feeding and shuts the workers down before the interrupt reaches the user's code.
        """
        self.job.stop.set()
        generator = self._generator()
        if generator is not None and inspect.getgeneratorstate(generator) == inspect.GEN_SUSPENDED:
            generator.close()

    def _outcomes(self) -> Generator[Outcome, None, None]:
        with stopped_on_interrupt(self._stop_now):
            yield from self._stream()

    def _stream(self) -> Iterator[Outcome]:
        started = time.perf_counter()
        stages = tuple(step.stage_name for step in self.job.pipeline.iter_processors())
        self._emit(
            RunStarted(
                self.reader.total,
                stages,
                self.backend.name,
                self.backend.workers,
                stop=self.job.stop.set,
            )
        )
        stream = self.backend.map(self.job, iter(self.reader))
        # Only a lazy input can reject items as it goes (a list is checked before).
        outcomes = _with_rejected(stream, self.reader) if self.reader.lazy else stream
        finished = False
        quiet = self.sink is None
        try:
            for outcome in outcomes:
                if quiet and outcome.failure is None:
                    self.done += 1  # the common case, without a call per sample
                else:
                    self._count(outcome)
                yield outcome
            finished = True
        except KeyboardInterrupt:
            self.job.stop.set()  # the backend then shuts every worker down
            self.status = "interrupted"
            raise
        except GeneratorExit:
            self.status = "interrupted"  # the consumer of imap() stopped early
            raise
        except BaseException:
            self.status = "failed"  # on_error="raise", or the backend failed
            raise
        finally:
            stream.close()
            if finished and self.job.stop.is_set():
                self.status = "interrupted"
            elif finished:
                self.status = "complete_with_failures" if self.failed else "complete"
            self._emit(
                RunFinished(self.status, self.done, self.failed, time.perf_counter() - started)
            )
        if self.failed and self.on_error == "collect":
            where = (
                "see result.failures (or result.failures_frame())"
                if self.kind == "run"
                else "see .failures on the iterator imap() returned, once it is exhausted"
            )
            warn_at_caller(
                f"{self.failed} of {self.done + self.failed} samples failed; {where}",
                FailuresWarning,
            )

    def _count(self, outcome: Outcome) -> None:
        if outcome.failure is None:
            self.done += 1
        else:
            self.failed += 1
            self.failures.append(outcome.failure)
        if self.sink is not None:  # skip building the event when nobody listens
            self.sink.handle(SampleFinished(outcome.record, outcome.failure))
        if outcome.failure is not None and self.on_error == "raise":
            self.status = "failed"
            raise _as_exception(outcome.failure)

    def _emit(self, event: RunEvent) -> None:
        if self.sink is not None:
            self.sink.handle(event)


_index = operator.itemgetter(0)  # an Outcome's index, at C speed


def _no_generator() -> None:
    return None


def _with_rejected(stream: Iterator[Outcome], reader: InputReader) -> Iterator[Outcome]:
    for outcome in stream:
        while reader.rejected:
            yield reader.rejected.popleft()
        yield outcome
    while reader.rejected:
        yield reader.rejected.popleft()


class RemoteTraceback(Exception):
    """The formatted traceback of an error raised in a worker (set as ``__cause__``)."""

    def __str__(self) -> str:
        return f"\n\n{self.args[0]}" if self.args else ""


def _as_exception(failure: FailureRecord) -> Exception:
    message = f"sample {failure.sample_id!r} failed"
    if failure.stage:
        message += f" in {failure.stage}"
    message += f": {failure.error_type}: {failure.message}"
    error: Exception
    if failure.error_type == "WorkerLostError":
        error = WorkerLostError(message)
    elif failure.error_type == "NotPicklableError":
        error = NotPicklableError(failure.message)
    elif failure.stage is None and failure.error_type in ("TypeError", "ValueError"):
        error = (
            TypeError(failure.message)
            if failure.error_type == "TypeError"
            else ValueError(failure.message)
        )
    else:
        error = ProcessingError(message, sample_id=failure.sample_id, processor=failure.stage)
    error.__cause__ = RemoteTraceback(failure.traceback)
    return error


@contextlib.contextmanager
def _gc_paused(pause: bool) -> Iterator[None]:
    """Pause the cyclic garbage collector while results pile up in the parent.

    Each full collection scans every result collected so far, which made a run of
    many small samples several times slower. Only for backends whose workers are other
    processes (process, dask): no user code runs in this process meanwhile, except the
    cheap samples the process backend's parent or the Dask client may run itself
    (``_inline``, ``_dask_inline``), whose cyclic garbage, if any, waits for the end of
    the run.

    At the end, everything allocated meanwhile (the results, mostly) would be the
    youngest generation, and the first allocation after ``gc.enable()`` would scan
    all of it at once (about 0.1 µs per object, more than a tiny sample's whole
    processing). Instead the run's objects join the oldest generation unscanned
    (``gc.freeze()`` then ``gc.unfreeze()``, skipped if anything is frozen already),
    as if they had survived earlier collections: the next full collection sees them,
    and frees any cyclic garbage among them then.
    """
    if not pause or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count() == 0:
            gc.freeze()
            gc.unfreeze()
        gc.enable()


def _as_pipeline(pipeline: Any) -> Processor:
    if isinstance(pipeline, Processor):
        return pipeline
    if callable(pipeline) and not isinstance(pipeline, type):
        return FunctionStep(function=pipeline)
    msg = f"pipeline must be a Processor, a Compose or a function, not {type(pipeline).__name__}"
    raise TypeError(msg)


def _stores_files(pipeline: Processor) -> bool:
    """Whether a repeated sample id could overwrite a file (a Cache or Save step)."""
    return any(step.storage_directories() for step, _ in walk(pipeline))


def _resolve_sink(progress: ProgressOption | None, stop: threading.Event) -> ProgressSink | None:
    if progress is False or progress is None:
        return None
    if not isinstance(progress, (bool, str)):
        return progress  # any object with handle(event), checked by RunOptions
    return create_display("auto" if progress is True else progress, stop=stop)


def _update_cache_stats(backend: Any, pipeline: Processor, result: RunResult[Any]) -> None:
    """Count the workers' cache hits and misses on the parent's Cache objects.

    Workers count on their own copies; in-process backends used the parent's objects.
    """
    if getattr(backend, "in_process", False):
        return
    steps = _StepRecords(result)
    for position in walk(pipeline):
        position.step.update_stats(steps)


class _StepRecords:
    """Every step record of a run, iterable more than once without a copy."""

    def __init__(self, result: RunResult[Any]) -> None:
        self.result = result

    def __iter__(self) -> Iterator[StepRecord]:
        return (step for record in self.result.records for step in record.steps)
