"""The parent's loop for a pipeline of plain processors, ``_run_step`` written out.

:class:`~datamultiproc.execution._inline.ParentRunner` runs a pipeline in the
calling process by calling its ``_run_step`` on a copy of each sample, under one
step recorder, as a worker does. When the pipeline is made of plain processors only
(one, or a Compose of them: each keeps :class:`~datamultiproc.Processor`'s
``_run_step``, no Cache or Save) the samples run here instead: the body of
``Processor._run_step`` written out in one loop, so that a step as cheap as
``sample.data += 1`` costs the parent little more than a plain loop's
``pipeline(sample)`` (W1 of ``benchmarks/bench_runner.py``). One processor has a loop
of its own (:func:`run_plain_step`, the fastest); a chain calls one method per step
(:func:`run_plain_chain`). Both keep what the recorder of a worker gets:

- the history entry and one :class:`~datamultiproc.core.StepRecord` per step, with
  the step's wall time from before ``process()`` to after the history entry;
- the parameter text from the run's memo (``StepRecorder.describe``), looked up
  again whenever one of the processor's field values is no longer the same object;
- records of steps that ``process()`` calls itself, before the step's own record;
- failures: ``process()`` raising or returning something else than a sample goes
  through ``Processor._step_error`` and ``not_a_sample``, as in ``_run_step``; any
  other error (in ``describe_params()``, say) becomes a failure without a stage.

A Compose's steps are read once per call (a chunk of at most 1,024 samples), not
per sample as ``Compose._run_step`` reads them.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Sequence
from typing import Any

from datamultiproc.core import (
    BaseSample,
    Compose,
    Processor,
    SampleRecord,
    StepRecord,
    StepRecorder,
)
from datamultiproc.core._processor import not_a_sample
from datamultiproc.exceptions import ProcessingError
from datamultiproc.execution._copies import copy_sample
from datamultiproc.execution._job import Outcome, to_outcome
from datamultiproc.execution._worker import RawOutcome, copy_failure, raw_failure

__all__ = ["plain_steps", "run_plain_chain", "run_plain_step"]

_new = tuple.__new__  # builds a named tuple in C; its own constructor is Python code
_is = operator.is_
_STAGE_NAME = Processor.__dict__["stage_name"]


def plain_steps(pipeline: Processor) -> tuple[Processor, ...]:
    """Return the plain processors ``pipeline`` runs, in order; none if it is not only those.

    A plain processor keeps :class:`Processor`'s ``_run_step``; a Compose (nested ones
    too) that keeps :class:`Compose`'s runs its steps in order, and what a plain step
    gets as ``upstream`` it does not use, so the chain is the flattened list. Anything
    else (a Cache, a Save, a step of its own making, a pipeline with its own
    ``__call__``) leaves the pipeline to ``_run_step``.
    """
    if type(pipeline).__call__ is not Processor.__call__:
        return ()
    return _leaves(pipeline) or ()


def _leaves(step: Processor) -> tuple[Processor, ...] | None:
    run_step = type(step)._run_step
    if run_step is Processor._run_step:
        return (step,)
    if run_step is not Compose._run_step:
        return None
    leaves: list[Processor] = []
    for inner in step.steps:  # type: ignore[attr-defined]
        found = _leaves(inner)
        if not found:
            return None
        leaves += found
    return tuple(leaves)


def run_plain_step(
    pipeline: Processor,
    items: Sequence[tuple[int, BaseSample]],
    recorder: StepRecorder,
    worker: str,
    deadline: float,
) -> list[Outcome]:
    """Run copies of ``items`` through one plain processor (see :func:`plain_steps`).

    Returns one outcome per item processed, in order, stopping after the first
    sample that ends past ``deadline`` (``time.perf_counter()``); never raises
    ``Exception``. ``recorder`` must be the active one.
    """
    outcomes: list[Outcome] = []
    append = outcomes.append
    clock = time.perf_counter
    records: list[StepRecord] = []
    recorder.records = records  # steps that process() calls itself; emptied per sample
    fixed_stage = type(pipeline).stage_name is _STAGE_NAME
    stage = type(pipeline).__name__
    text = ""
    values: tuple[Any, ...] = ()
    count = -1  # the field values the text was made for: none yet
    for index, sample in items:
        sample_id = sample.id
        try:
            copy = copy_sample(sample)
        except Exception as exc:
            append(_failed(index, sample_id, (), copy_failure(exc), worker))
            if clock() > deadline:
                break
            continue
        try:
            if not fixed_stage:
                stage = pipeline.stage_name
            started = clock()
            try:
                result = pipeline.process(copy)
            except ProcessingError:
                raise
            except Exception as exc:
                raise pipeline._step_error(copy, stage, exc, recorder, started) from exc
            if not isinstance(result, BaseSample):
                raise not_a_sample(copy, stage, result)
            current = pipeline.__dict__
            if len(current) != count or (count and not all(map(_is, values, current.values()))):
                text = recorder.describe(pipeline)
                values = tuple(pipeline.__dict__.values())
                count = len(values)
            result.processing_history.append((stage, text))
            now = clock()
        except Exception as exc:
            append(_failed(index, sample_id, tuple(records), raw_failure(exc), worker))
            records.clear()
            if clock() > deadline:
                break
            continue
        # StepRecord(len(records), stage, text, now - started), its other fields' defaults
        # written out: cheaper than joining a tuple of them on (tests compare the records).
        own = _new(
            StepRecord,
            (len(records), stage, text, now - started, None, "ok", 0, 0, False, None, None),
        )
        if records:
            steps = (*records, own)
            records.clear()
        else:
            steps = (own,)
        record = _new(SampleRecord, (index, sample_id, worker, "ok", steps))
        append(_new(Outcome, (index, result, record, None)))
        if now > deadline:
            break
    return outcomes


def run_plain_chain(
    steps: Sequence[Processor],
    items: Sequence[tuple[int, BaseSample]],
    recorder: StepRecorder,
    worker: str,
    deadline: float,
) -> list[Outcome]:
    """Run copies of ``items`` through ``steps`` in turn (see :func:`plain_steps`).

    What :func:`run_plain_step` does, for a chain: each step through :class:`_PlainStep`
    (one method call per step instead of ``_run_step``'s four).
    """
    if len(steps) == 1:
        return run_plain_step(steps[0], items, recorder, worker, deadline)
    outcomes: list[Outcome] = []
    append = outcomes.append
    clock = time.perf_counter
    records: list[StepRecord] = []
    recorder.records = records
    chain = [_PlainStep(step, recorder, records) for step in steps]
    for index, sample in items:
        sample_id = sample.id
        try:
            result = copy_sample(sample)
        except Exception as exc:
            append(_failed(index, sample_id, (), copy_failure(exc), worker))
            if clock() > deadline:
                break
            continue
        try:
            for step in chain:
                result = step.run(result)
        except Exception as exc:
            append(_failed(index, sample_id, tuple(records), raw_failure(exc), worker))
            records.clear()
            if clock() > deadline:
                break
            continue
        record = _new(SampleRecord, (index, sample_id, worker, "ok", tuple(records)))
        records.clear()
        append(_new(Outcome, (index, result, record, None)))
        if clock() > deadline:
            break
    return outcomes


class _PlainStep:
    """One plain processor of a chain, with its parameter text as last looked up."""

    __slots__ = (
        "count",
        "fixed_stage",
        "processor",
        "recorder",
        "records",
        "stage",
        "text",
        "values",
    )

    def __init__(
        self, processor: Processor, recorder: StepRecorder, records: list[StepRecord]
    ) -> None:
        self.processor, self.recorder, self.records = processor, recorder, records
        self.fixed_stage = type(processor).stage_name is _STAGE_NAME
        self.stage = type(processor).__name__
        self.text = ""
        self.values: tuple[Any, ...] = ()
        self.count = -1  # the field values the text was made for: none yet

    def run(self, sample: Any) -> Any:
        """Do what ``Processor._run_step`` does under a recorder; see :func:`run_plain_step`."""
        processor, records = self.processor, self.records
        stage = self.stage if self.fixed_stage else processor.stage_name
        started = time.perf_counter()
        try:
            result = processor.process(sample)
        except ProcessingError:
            raise
        except Exception as exc:
            raise processor._step_error(sample, stage, exc, self.recorder, started) from exc
        if not isinstance(result, BaseSample):
            raise not_a_sample(sample, stage, result)
        current = processor.__dict__
        count = self.count
        if len(current) != count or (count and not all(map(_is, self.values, current.values()))):
            self.text = self.recorder.describe(processor)
            self.values = tuple(processor.__dict__.values())
            self.count = len(self.values)
        text = self.text
        result.processing_history.append((stage, text))
        seconds = time.perf_counter() - started
        records.append(
            _new(
                StepRecord,
                (len(records), stage, text, seconds, None, "ok", 0, 0, False, None, None),
            )
        )
        return result


def _failed(
    index: int, sample_id: str, steps: tuple[StepRecord, ...], failure: Any, worker: str
) -> Outcome:
    return to_outcome(RawOutcome(index, sample_id, None, steps, failure), worker)
