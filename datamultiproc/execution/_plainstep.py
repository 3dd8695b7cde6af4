"""The parent's loop for a pipeline of one plain processor, written out per sample.

:class:`~datamultiproc.execution._inline.ParentRunner` runs a pipeline in the
calling process by calling its ``_run_step`` on a copy of each sample, under one
step recorder, as a worker does. When the pipeline is one plain processor (its
``_run_step`` and ``__call__`` are :class:`~datamultiproc.Processor`'s: no Compose,
Cache or Save) the samples run here instead: the body of ``Processor._run_step``
written out in one loop, so that a step as cheap as ``sample.data += 1`` costs the
parent little more than a plain loop's ``pipeline(sample)`` (W1 of
``benchmarks/bench_runner.py``). The loop keeps what the recorder of a worker gets:

- the history entry and one :class:`~datamultiproc.core.StepRecord` per sample, with
  the step's wall time from before ``process()`` to after the history entry;
- the parameter text from the run's memo (``StepRecorder.describe``), looked up
  again whenever one of the processor's field values is no longer the same object;
- records of steps that ``process()`` calls itself, before the step's own record;
- failures: ``process()`` raising or returning something else than a sample goes
  through ``Processor._step_error`` and ``not_a_sample``, as in ``_run_step``; any
  other error (in ``describe_params()``, say) becomes a failure without a stage.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Sequence
from typing import Any

from datamultiproc.core import BaseSample, Processor, SampleRecord, StepRecord, StepRecorder
from datamultiproc.core._processor import not_a_sample
from datamultiproc.exceptions import ProcessingError
from datamultiproc.execution._copies import copy_sample
from datamultiproc.execution._job import Outcome, to_outcome
from datamultiproc.execution._worker import RawOutcome, copy_failure, raw_failure

__all__ = ["is_plain_step", "run_plain_step"]

_new = tuple.__new__  # builds a named tuple in C; its own constructor is Python code
_is = operator.is_
_STAGE_NAME = Processor.__dict__["stage_name"]


def is_plain_step(pipeline: Processor) -> bool:
    """Whether ``pipeline`` runs as one step of :class:`Processor`'s own making."""
    kind = type(pipeline)
    return kind._run_step is Processor._run_step and kind.__call__ is Processor.__call__


def run_plain_step(
    pipeline: Processor,
    items: Sequence[tuple[int, BaseSample]],
    recorder: StepRecorder,
    worker: str,
    deadline: float,
) -> list[Outcome]:
    """Run copies of ``items`` through ``pipeline`` (see :func:`is_plain_step`).

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


def _failed(
    index: int, sample_id: str, steps: tuple[StepRecord, ...], failure: Any, worker: str
) -> Outcome:
    return to_outcome(RawOutcome(index, sample_id, None, steps, failure), worker)
