"""The parent takes part: samples run in the calling process when moving them costs more.

Sending a sample to a worker and its result back costs the parent a fixed amount
of time (pickling, pipes, unpickling); on samples that take less time to process
than that, workers wait for the parent and the run is slower than a plain loop.
The process backend measures both costs from its first chunks (see
:class:`~._policy.InlinePolicy`; a first run, before any worker starts, from the parent's
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
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from datamultiproc.core import BaseSample, Processor, SampleRecord, StepRecord, recording
from datamultiproc.execution._codestate import CodeState, code_state
from datamultiproc.execution._copies import copy_sample
from datamultiproc.execution._firstrun import transfer_seconds
from datamultiproc.execution._job import Outcome, to_outcome
from datamultiproc.execution._moduledata import load_pipeline
from datamultiproc.execution._plainstep import plain_steps, run_plain_chain
from datamultiproc.execution._policy import InlinePolicy
from datamultiproc.execution._setupfiles import FileStamps
from datamultiproc.execution._worker import (
    RawFailure,
    RawOutcome,
    copy_failure,
    prepare_watched,
    raw_failure,
    run_sample,
)

__all__ = ["PARENT", "ParentRunner"]

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
        self.read = FileStamps()  # the files its setup() read

    def prepare(self) -> None:
        """Unpickle and set up the pipeline copy (once; a rerun reuses a released one).

        The copy belongs to this run until :meth:`release`: two runs at once (in two
        threads) never share one.
        """
        if self.pipeline is not None:
            return
        kept = _KEPT.pop(self.key, None)
        code = code_state()
        if kept is None or kept[3] != code or kept[4].changed():
            pipeline, _ = load_pipeline(self.blob)  # its module data: this process's own
            failure, read = prepare_watched(pipeline)
            kept = (pipeline, failure, {}, code, read)
        self.pipeline, self.setup_error, self.params, self.code, self.read = kept

    def release(self, *, keep: bool) -> None:
        """End of the run: keep the set-up copy for the next run, or drop it (interrupted)."""
        if self.pipeline is None:
            return
        if keep:
            # Newest last.
            _KEPT[self.key] = (self.pipeline, self.setup_error, self.params, self.code, self.read)
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
# key -> (pipeline, setup failure, parameter-text memo, user code it was loaded with,
# the files its setup() read)
_KEPT: OrderedDict[bytes, tuple[Any, RawFailure | None, dict[int, Any], CodeState, FileStamps]] = (
    OrderedDict()
)

_PROBE_GROUP = 8  # a probe is timed in groups of this many samples
