"""The parent takes part: samples run in the calling process when moving them costs more.

Sending a sample to a worker and its result back costs the parent a fixed amount
of time (pickling, pipes, unpickling); on samples that take less time to process
than that, workers wait for the parent and the run is slower than a plain loop.
The process backend measures both costs from its first chunks (see
:class:`InlinePolicy`; a first run, before any worker starts, from the parent's
first samples, see ``_firstrun``) and, when processing is the cheaper of the two,
runs the following samples itself, through :class:`ParentRunner`, with these
guarantees:

- the same results and records as a worker produces, the worker named ``"parent"``;
- the pipeline is a private copy, unpickled from the same bytes the workers get
  and set up once (so private state, Cache counters and Save behave as in a worker);
- each sample is copied first: the caller's objects never change;
- errors become failed outcomes, as in a worker.

The policy keeps measuring: when samples get more expensive (so workers would pay
off again) chunks go back to the workers. It never runs samples inline while a
``timeout`` is set (the parent cannot stop its own sample) and never retries there
a sample whose worker died (it might take the parent down too).
"""

from __future__ import annotations

import math
import pickle
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from datamultiproc.core import BaseSample, Processor, SampleRecord, StepRecord, recording
from datamultiproc.execution._codestate import CodeState, code_state
from datamultiproc.execution._copies import copy_sample
from datamultiproc.execution._firstrun import estimated_pace, transfer_seconds
from datamultiproc.execution._job import Outcome, to_outcome, usable_cores
from datamultiproc.execution._plainstep import plain_steps, run_plain_chain
from datamultiproc.execution._worker import (
    RawFailure,
    RawOutcome,
    copy_failure,
    prepare_pipeline,
    raw_failure,
    run_sample,
)

__all__ = ["PARENT", "InlineFigures", "InlinePolicy", "ParentRunner"]

PARENT = "parent"  # the worker name in records of samples run in the calling process

_new = tuple.__new__


class ParentRunner:
    """Runs samples in this process on a private, set-up copy of the pipeline.

    Like a worker, the parent keeps the last few pipelines it set up, so a rerun
    skips unpickling and ``setup()``; as with warm workers, a kept copy is dropped
    once a user module changed (see ``_codestate``): the same bytes may name a class
    whose code was edited and reloaded since.

    Parameters
    ----------
    key, blob
        The pipeline's key and pickled bytes, as sent to the workers.
    """

    def __init__(self, key: bytes, blob: bytes) -> None:
        self.key, self.blob = key, blob
        self.pipeline: Processor | None = None
        self.setup_error: RawFailure | None = None
        self.params: dict[int, Any] = {}
        self.code: CodeState = ()

    def prepare(self) -> None:
        """Unpickle and set up the pipeline copy (once; a rerun reuses a released one).

        The copy belongs to this run until :meth:`release`: two runs at once (in two
        threads) never share one.
        """
        if self.pipeline is not None:
            return
        kept = _KEPT.pop(self.key, None)
        code = code_state()
        if kept is None or kept[3] != code:
            pipeline = pickle.loads(self.blob)
            kept = (pipeline, prepare_pipeline(pipeline), {}, code)
        self.pipeline, self.setup_error, self.params, self.code = kept

    def release(self, *, keep: bool) -> None:
        """End of the run: keep the set-up copy for the next run, or drop it (interrupted)."""
        if self.pipeline is None:
            return
        if keep:
            # Newest last.
            _KEPT[self.key] = (self.pipeline, self.setup_error, self.params, self.code)
            while len(_KEPT) > _KEPT_PIPELINES:
                _KEPT.popitem(last=False)
        self.pipeline = None

    def run(
        self, items: Sequence[tuple[int, BaseSample]], deadline: float = math.inf
    ) -> list[Outcome]:
        """Process ``items`` here, in order, until ``deadline`` (``time.perf_counter()``).

        Returns the outcomes of the items processed (at least one); never raises
        ``Exception``. Does what :func:`~datamultiproc.execution._worker.run_sample`
        with ``copy_input=True`` does for each sample, in one loop: one recorder for
        the chunk (its records start afresh per sample), the pipeline's step called
        without the public ``__call__``'s input check (every item is a sample copy).
        A pipeline of plain processors (one, or a Compose of them) runs through
        :func:`~datamultiproc.execution._plainstep.run_plain_chain`, the same loop with
        ``_run_step`` written out.
        """
        self.prepare()
        pipeline, setup_error, params = self.pipeline, self.setup_error, self.params
        assert pipeline is not None
        if setup_error is not None:
            return [to_outcome(run_sample(pipeline, i, s, setup_error), PARENT) for i, s in items]
        chain = plain_steps(pipeline)
        if chain:
            with recording(params) as recorder:
                return run_plain_chain(chain, items, recorder, PARENT, deadline)
        step: Callable[[Any, Any], Any] = pipeline._run_step
        upstream: Any = ()
        if type(pipeline).__call__ is not Processor.__call__:  # its own __call__: keep it
            step, upstream = _call_with, pipeline
        outcomes: list[Outcome] = []
        append = outcomes.append
        clock = time.perf_counter
        with recording(params) as recorder:
            for index, sample in items:
                if outcomes and clock() > deadline:
                    break
                sample_id = sample.id
                try:
                    copy = copy_sample(sample)
                except Exception as exc:
                    append(_failed(index, sample_id, (), copy_failure(exc)))
                    continue
                records: list[StepRecord] = []
                recorder.records = records
                try:
                    result = step(copy, upstream)
                except Exception as exc:
                    append(_failed(index, sample_id, tuple(records), raw_failure(exc)))
                    continue
                # tuple.__new__ skips the named tuples' Python-level constructors.
                record = _new(SampleRecord, (index, sample_id, PARENT, "ok", tuple(records)))
                append(_new(Outcome, (index, result, record, None)))
        return outcomes

    def run_measured(
        self,
        items: Sequence[tuple[int, BaseSample]],
        policy: InlinePolicy,
        *,
        queued: int | None = None,
    ) -> list[Outcome]:
        """Run an inline chunk that ``policy`` asked for, and report its time to it.

        Returns the outcomes of the items processed, in order (at least one; the rest
        ran out of time and go to the workers). A probe is timed in groups of
        :data:`_PROBE_GROUP` samples and the fastest group counts: a moment the parent
        lost to other programs (or to a profiler) must not decide the run, while
        samples that are slow throughout (waiting on I/O) are slow in every group;
        its first sample runs untimed (one-time costs). With ``queued`` (the samples
        the workers hold), a probe also stops once the workers would have run those at
        their pace, so they never wait for it.
        """
        self.prepare()  # not part of the measured time
        if policy.probing:
            return self._probe(items, policy, queued)
        started = time.perf_counter()
        outcomes = self.run(items, policy.deadline(len(items), started))
        policy.observe_inline(time.perf_counter() - started, len(outcomes))
        return outcomes

    def _probe(
        self, items: Sequence[tuple[int, BaseSample]], policy: InlinePolicy, queued: int | None
    ) -> list[Outcome]:
        if not policy.first_run:
            outcomes, inline, _ = self._timed(items, policy, queued)
            policy.observe_inline(inline, 1)
            return outcomes
        if transfer_seconds(items[:1]) is None:
            policy.observe_first(math.inf, 0.0)  # the workers' path fails such samples: use it
            return []
        outcomes, inline, timed = self._timed(items, policy, queued)
        policy.observe_first(inline, transfer_seconds(*timed) or 0.0)
        if policy.active and len(outcomes) < len(items):
            # The parent won: it keeps the probe's other samples (none starts a worker).
            rest = items[len(outcomes) :]
            started = time.perf_counter()
            done = self.run(rest, policy.deadline(len(rest), started))
            policy.observe_inline(time.perf_counter() - started, len(done))
            outcomes += done
        return outcomes

    def _timed(
        self, items: Sequence[tuple[int, BaseSample]], policy: InlinePolicy, queued: int | None
    ) -> tuple[list[Outcome], float, tuple[Sequence[tuple[int, BaseSample]], list[Outcome]]]:
        """Run a probe; return its outcomes, the time per sample, and its last group run."""
        # The first sample pays one-time costs (first calls, the parameter-text memo):
        # it counts only if it is the only one.
        lap = time.perf_counter()
        outcomes = self.run(items[:1])
        first = time.perf_counter() - lap
        rest = items[1:]
        started = time.perf_counter()
        # A first run's probe counts its first sample too: one slow sample says enough.
        deadline = policy.deadline(len(rest), lap if policy.first_run else started)
        if policy.pace is not None and queued is not None:
            deadline = min(deadline, started + queued * policy.pace)
        fastest = math.inf
        timed = items[:1], list(outcomes)
        for start in range(0, len(rest), _PROBE_GROUP):
            group = rest[start : start + _PROBE_GROUP]
            lap = time.perf_counter()
            if lap > deadline:
                break
            done = self.run(group, deadline)
            fastest = min(fastest, (time.perf_counter() - lap) / len(done))
            outcomes += done
            timed = group[: len(done)], done
            if len(done) < len(group):
                break
        return outcomes, first if fastest == math.inf else fastest, timed


def _call_with(sample: Any, pipeline: Any) -> Any:
    return pipeline(sample)


def _failed(
    index: int, sample_id: str, steps: tuple[StepRecord, ...], failure: RawFailure
) -> Outcome:
    return to_outcome(RawOutcome(index, sample_id, None, steps, failure), PARENT)


_KEPT_PIPELINES = 4
# key -> (pipeline, setup failure, parameter-text memo, user code it was loaded with)
_KEPT: OrderedDict[bytes, tuple[Any, RawFailure | None, dict[int, Any], CodeState]] = OrderedDict()

# Before deciding, the workers must have sent back this many samples in this many chunks.
_MIN_MEASURED = 32
_MIN_CHUNKS = 3
_PROBE_SAMPLES = 32
_PROBE_GROUP = 8  # a probe is timed in groups of this many samples
_INLINE_SECONDS = 0.02  # parent time one inline chunk should take
_MAX_INLINE_CHUNK = 1024  # results held at once: memory stays flat in imap
_WORK_DECAY = 0.7  # weight of the earlier chunks in the estimate of a worker's CPU per sample
_FIRST_PROBE_SECONDS = 0.001  # a first run's probe stops with the first sample ending past this
_RETRY_SECONDS = 0.02  # after a probe that lost, wait this long (doubling) before the next
_MAX_RETRY_SECONDS = 2.0  # so noise never keeps the parent out for long
_MARGIN = 1.2  # hysteresis between the two modes
# A first run the parent won holds its estimated pace for the workers times this: their
# first chunks come back far slower than they run later (W1: about 70 µs per sample over
# the first three, 12-15 µs at full speed), so a stall in the parent must not start them.
_START_COST = 2.0
# Probe only samples whose processing costs a worker at most this many times what
# moving one costs the parent (the worker's figure includes its own unpickling).
_PROBE_RATIO = 4.0


class InlineFigures(NamedTuple):
    """What a run in which the parent took over measured, for the next run of its pipeline."""

    pace: float
    work: float
    transfer: float


class InlinePolicy:
    """Chooses, from measured costs, whether the next samples run in the parent.

    Four measurements, all taken during the run: ``pace``, the wall time per sample
    at which results come back from the workers; ``transfer``, the parent's CPU time
    per sample meanwhile (moving samples to and from workers); ``work``, a worker's
    CPU time per sample; ``inline``, the parent's time to copy and process a sample
    itself (measured on a small probe chunk). Samples run in the parent while
    ``inline`` beats ``pace``. A probe is only tried when processing a sample costs a
    worker less CPU than :data:`_PROBE_RATIO` times what moving it costs the parent,
    and less than the workers' pace, so CPU-heavy work (which
    the workers share) never runs serially, even when other programs slow the
    workers down; a probe stops early once it falls behind the workers' pace (samples that
    wait rather than compute, e.g. on I/O), and after a lost probe the next one
    waits :data:`_RETRY_SECONDS`, twice as long after each further loss.

    A policy may start from the figures of an earlier run of the same pipeline in
    which the parent took over (:meth:`recall`): it then asks for a probe at once,
    before any worker runs a sample, and needs workers (:attr:`needs_workers`) only
    once that probe loses against the recalled pace, or samples get more expensive.
    A first run, with no worker alive (:meth:`start_first`), likewise probes the
    parent first, and compares it with the pace that moving the probe's samples
    predicts for the workers (see ``_firstrun``); only if the parent loses do the
    workers start.

    Parameters
    ----------
    enabled
        ``False`` to always use the workers.
    """

    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self.first_result: float | None = None
        self.last_result = 0.0
        self.first_cpu = self.last_cpu = 0.0
        self.returned = 0  # samples back from workers after the first chunk
        self.chunks = 0
        self.work: float | None = None
        self.work_cpu = self.work_samples = 0.0
        self.inline: float | None = None
        self.active = False
        self.probing = False
        self.next_probe = 0.0
        self.retry_seconds = _RETRY_SECONDS
        self.recalled: InlineFigures | None = None
        self.first_run = False  # a first run's probe is due: no worker before it
        self.slots = 0  # the workers a first run would start

    @property
    def pace(self) -> float | None:
        """Wall seconds per sample coming back from the workers, once measured (or recalled)."""
        if self.first_result is None or self.returned < _MIN_MEASURED or self.chunks < _MIN_CHUNKS:
            return None if self.recalled is None else self.recalled.pace
        return (self.last_result - self.first_result) / self.returned

    @property
    def needs_workers(self) -> bool:
        """Whether samples go to the workers now (neither the parent nor its probe takes them)."""
        return not self.active and self.recalled is None and not self.first_run

    def start_first(self, workers: int) -> None:
        """Probe the parent before starting ``workers`` workers (a first run: no worker alive)."""
        if self.enabled and self.recalled is None:
            self.first_run, self.slots = True, workers

    def observe_first(self, inline: float, transfer: float) -> None:
        """Decide a first run from its probe: ``inline`` per sample, ``transfer`` per round trip.

        The parent keeps the samples if it beats the pace estimated for the workers
        (by :data:`_MARGIN`) and a sample costs less than :data:`_PROBE_RATIO` times
        its transfer, as on a later run (the estimate then stands in for recalled
        figures); otherwise the workers start.
        """
        self.first_run = self.probing = False
        pace = estimated_pace(inline, transfer, workers=self.slots, cores=usable_cores())
        if inline * _MARGIN < pace and inline < _PROBE_RATIO * transfer:
            # Workers not started yet would reach that pace only after their start and
            # first chunks: the parent gives the samples up only well past it.
            self.recalled = InlineFigures(_START_COST * pace, inline, transfer)
            self.work = self.inline = inline
            self.active = True
            return
        # Not kept: a later probe must pass the workers' figures first (CPU-heavy samples
        # never go back to the parent on the strength of this one).
        self.inline = None
        self.next_probe = time.monotonic() + self.retry_seconds

    def recall(self, figures: InlineFigures) -> None:
        """Start from an earlier run's figures: probe the parent before using any worker."""
        if self.enabled:
            self.recalled = figures
            self.work = figures.work

    def figures(self) -> InlineFigures | None:
        """Return the figures a later run may :meth:`recall`; ``None`` unless the parent took over."""
        pace = self.pace
        if not self.active or pace is None or self.work is None:
            return None
        return InlineFigures(pace, self.work, self.transfer)

    def _forget(self) -> None:
        """Drop recalled figures: from now on only the workers' own measurements count."""
        self.recalled = None
        if not self.work_samples:
            self.work = None

    def observe_results(self, samples: int, cpu_seconds: float) -> None:
        """Note a chunk of ``samples`` back from a worker that spent ``cpu_seconds`` on it."""
        # Weighted by samples, recent chunks more: the first chunks (a few samples, each
        # paying a chunk's fixed costs) must not hold the estimate up for long.
        self.work_cpu = _WORK_DECAY * self.work_cpu + cpu_seconds
        self.work_samples = _WORK_DECAY * self.work_samples + max(samples, 1)
        self.work = self.work_cpu / self.work_samples
        if self.active:
            return  # retries finishing while the parent works say nothing about the pace
        now, cpu = time.perf_counter(), time.thread_time()
        if self.first_result is None:
            self.first_result, self.first_cpu = now, cpu
        else:
            self.returned += samples
            self.chunks += 1
        self.last_result, self.last_cpu = now, cpu

    @property
    def transfer(self) -> float:
        """The parent's CPU seconds per sample while the workers ran them."""
        if not self.returned and self.recalled is not None:
            return self.recalled.transfer
        return (self.last_cpu - self.first_cpu) / max(self.returned, 1)

    def observe_inline(self, seconds: float, samples: int) -> None:
        """Fold the time of an inline chunk into the estimate (a probe's replaces it)."""
        per_sample = seconds / max(samples, 1)
        if self.inline is None or self.probing:
            self.inline = per_sample  # a probe is a fresh look: no stale outlier lingers
        else:
            self.inline = 0.5 * self.inline + 0.5 * per_sample
        pace = self.pace
        if self.probing and pace is not None and self.inline * _MARGIN >= pace:
            self.next_probe = time.monotonic() + self.retry_seconds  # lost: back off
            self.retry_seconds = min(2 * self.retry_seconds, _MAX_RETRY_SECONDS)
            self._forget()
        elif self.probing and pace is not None:
            # Won: from now on no new samples go to the workers (results arriving before
            # the next inline chunk would otherwise send them more).
            self.active = True
            self.retry_seconds = _RETRY_SECONDS
        self.probing = False

    def deadline(self, size: int, started: float) -> float:
        """Return when an inline chunk of ``size`` samples started at ``started`` must stop.

        A probe stops once it is slower than the workers would have been; a chunk
        once it took twice its expected time (samples became expensive).
        """
        pace = self.pace or 0.0
        if self.probing and self.first_run:
            return started + _FIRST_PROBE_SECONDS
        if self.probing or self.inline is None:
            return started + size * pace
        return started + 2 * size * max(self.inline, pace)

    def chunk_size(self) -> int:
        """Return how many samples to run in the parent next; 0 to use the workers."""
        if self.first_run:  # the first look at the samples: the parent's probe
            self.probing = True
            return _PROBE_SAMPLES
        pace = self.pace
        if not self.enabled or pace is None or self.work is None:
            return 0
        now = time.monotonic()
        if self.recalled is not None and not self.active:
            # Recalled figures: the parent's probe comes first; without one, the workers.
            if self.inline is not None or self.probing:
                self._forget()
                return 0
            self.next_probe = math.inf
            self.probing = True
            return _PROBE_SAMPLES
        if self.active and self.inline is not None and self.inline > _MARGIN * pace:
            self.active = False  # samples got more expensive: back to the workers
            self.inline = None  # a mix of cheap and expensive samples: only a new probe counts
            self._forget()
            self.next_probe = now + self.retry_seconds
        elif not self.active and self.inline is not None and self.inline * _MARGIN < pace:
            self.active = True
            self.retry_seconds = _RETRY_SECONDS
        elif (
            not self.active
            and self.work < min(pace, _PROBE_RATIO * self.transfer)
            and now >= self.next_probe
        ):
            # Processing alone is faster than the workers' pace: measure the parent.
            self.next_probe = math.inf  # set again once the probe is measured
            self.probing = True
            return _PROBE_SAMPLES
        if not self.active or self.inline is None:
            return 0
        return max(1, min(_MAX_INLINE_CHUNK, int(_INLINE_SECONDS / max(self.inline, 1e-7))))
