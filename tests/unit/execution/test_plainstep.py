"""The parent's loop for one plain processor: what a worker makes of each sample, exactly."""

from __future__ import annotations

import threading
from typing import Any, cast

import pytest

from datamultiproc import Compose, Processor
from datamultiproc.core import FunctionStep, StepRecord, current_recorder, recording
from datamultiproc.exceptions import ProcessingError
from datamultiproc.execution._codec import encode_pipeline
from datamultiproc.execution._inline import PARENT, ParentRunner
from datamultiproc.execution._job import Outcome, to_outcome
from datamultiproc.execution._moduledata import load_pipeline
from datamultiproc.execution._plainstep import plain_steps, run_plain_chain, run_plain_step
from datamultiproc.execution._worker import run_sample
from tests.helpers import (
    AddStep,
    AnySample,
    DoubleStep,
    FailOn,
    NumberSample,
    ReturnsNone,
    number_samples,
)


class Tally(Processor):
    """Counts its calls in a field: its parameter text changes after every sample."""

    calls: int = 0

    def process(self, sample: NumberSample) -> NumberSample:
        self.calls = self.calls + 1
        sample.data = sample.data + self.calls
        return sample


class Stepwise(Processor):
    """Changes its field on every third sample only (the text memo must follow it)."""

    size: int = 1

    def process(self, sample: NumberSample) -> NumberSample:
        if sample.data % 3 == 2:
            self.size = self.size + 1
        sample.data = sample.data + self.size
        return sample


class CallsInner(Processor):
    """Runs another processor inside process(): its records come first."""

    inner: Processor = AddStep(step_size=5)

    def process(self, sample: NumberSample) -> NumberSample:
        return cast(NumberSample, self.inner(self.inner(sample)))


class RaisesProcessingError(Processor):
    def process(self, sample: NumberSample) -> NumberSample:
        if sample.data % 2:
            msg = "odd"
            raise ProcessingError(msg, sample_id=sample.id, processor="Elsewhere")
        return sample


class BadDescription(Processor):
    def process(self, sample: NumberSample) -> NumberSample:
        return sample

    def describe_params(self) -> str:
        msg = "no text"
        raise RuntimeError(msg)


def _increment(sample: NumberSample) -> NumberSample:
    sample.data = sample.data + 1
    return sample


PLAIN = [
    AddStep(step_size=3),
    DoubleStep(),
    Tally(),
    Stepwise(),
    CallsInner(),
    FailOn(ids=["s1", "s4"]),
    ReturnsNone(),
    RaisesProcessingError(),
    BadDescription(),
    FunctionStep(function=_increment),
    # Chains: a Compose of plain processors, nested ones flattened.
    Compose(AddStep(step_size=3), DoubleStep()),
    Compose(Tally(), Compose(_increment, Stepwise()), AddStep()),
    Compose(AddStep(), FailOn(ids=["s1", "s4"]), DoubleStep()),
    Compose(CallsInner(), ReturnsNone()),
    Compose(Stepwise(), RaisesProcessingError()),
    Compose(DoubleStep(), BadDescription()),
]


def _comparable(outcome: Outcome) -> tuple[Any, ...]:
    """An outcome with step times zeroed and a traceback reduced to its last line."""
    record = outcome.record._replace(
        steps=tuple(s._replace(seconds=0.0) for s in outcome.record.steps)
    )
    failure = outcome.failure
    if failure is not None:
        failure = failure._replace(traceback=failure.traceback.strip().splitlines()[-1])
    sample = None if outcome.sample is None else outcome.sample.model_dump()
    return (outcome.index, sample, record, failure)


def _as_a_worker(pipeline: Processor, samples: list[Any]) -> list[Outcome]:
    """What the workers' code makes of the samples: run_sample, one memo for the run."""
    own, _ = load_pipeline(encode_pipeline(pipeline)[1])
    params: dict[int, Any] = {}
    return [
        to_outcome(run_sample(own, index, sample, None, params, copy_input=True), PARENT)
        for index, sample in enumerate(samples)
    ]


def _in_the_parent(pipeline: Processor, samples: list[Any]) -> list[Outcome]:
    runner = ParentRunner(*encode_pipeline(pipeline))
    try:
        return runner.run(list(enumerate(samples)))
    finally:
        runner.release(keep=False)


@pytest.mark.parametrize("pipeline", PLAIN, ids=lambda p: type(p).__name__)
def test_the_parent_makes_what_a_worker_makes_of_every_sample(pipeline: Processor) -> None:
    assert len(plain_steps(pipeline)) == len(pipeline.iter_processors())
    inputs = number_samples(9)
    for sample in inputs[::2]:
        sample.processing_history.append(("Load", "x=1"))
    before = [s.model_dump() for s in inputs]
    ours = _in_the_parent(pipeline, inputs)
    assert [s.model_dump() for s in inputs] == before  # the caller's samples never change
    theirs = _as_a_worker(pipeline, [NumberSample(**dumped) for dumped in before])
    assert [_comparable(o) for o in ours] == [_comparable(o) for o in theirs]
    assert all(type(step) is StepRecord for o in ours for step in o.record.steps)


def test_records_carry_the_step_defaults_and_a_measured_time() -> None:
    (outcome,) = _in_the_parent(AddStep(), number_samples(1))
    (step,) = outcome.record.steps
    assert step == StepRecord(0, "AddStep", "step_size=1", step.seconds)
    assert 0 < step.seconds < 1
    assert outcome.record.worker == PARENT
    assert outcome.record.status == "ok"


def test_failures_keep_the_original_error_and_the_steps_run_so_far() -> None:
    outcomes = _in_the_parent(CallsInner(inner=FailOn(ids=["s1"])), number_samples(2))
    failed = outcomes[1]
    assert failed.sample is None
    assert failed.failure is not None
    assert (failed.failure.stage, failed.failure.error_type) == ("FailOn", "ValueError")
    assert "bad sample s1" in failed.failure.traceback
    assert [(s.stage, s.status) for s in failed.record.steps] == [("FailOn", "failed")]
    # The next sample starts with no records left over.
    assert [s.stage for s in outcomes[0].record.steps] == ["FailOn", "FailOn", "CallsInner"]


def test_a_sample_that_cannot_be_copied_fails_alone() -> None:
    samples = [AnySample(id="a"), AnySample(id="b", payload=threading.Lock()), AnySample(id="c")]
    outcomes = _in_the_parent(FunctionStep(function=lambda s: s), samples)
    assert [o.failure is None for o in outcomes] == [True, False, True]
    assert outcomes[1].failure is not None
    assert outcomes[1].failure.error_type == "NotPicklableError"
    assert outcomes[1].record.steps == ()


def test_the_loop_stops_after_the_first_sample_past_its_deadline() -> None:
    samples = list(enumerate(number_samples(5)))
    for run_loop, pipeline in [
        (run_plain_step, AddStep()),
        (run_plain_step, FailOn(ids=["s0", "s1"])),
        (run_plain_chain, [AddStep(), DoubleStep()]),
        (run_plain_chain, [AddStep(), FailOn(ids=["s0", "s1"])]),
    ]:
        with recording({}) as recorder:
            outcomes = run_loop(pipeline, samples, recorder, "p", 0.0)  # type: ignore[operator]
        assert [o.index for o in outcomes] == [0]


def test_only_plain_processors_take_the_written_out_loop(tmp_path: Any) -> None:
    from datamultiproc import Cache, Save

    first, second = AddStep(), DoubleStep()
    assert plain_steps(Compose(first, Compose(second, first))) == (first, second, first)
    assert plain_steps(Compose(AddStep(), Cache(processor=AddStep(), cache_dir=tmp_path))) == ()
    assert plain_steps(Save(save_to_dir=tmp_path)) == ()

    class OwnCall(AddStep):
        def __call__(self, sample: Any) -> Any:
            assert current_recorder() is not None
            return super().__call__(sample)

    class OwnChain(Compose):
        def _run_step(self, sample: Any, upstream: tuple[Processor, ...]) -> Any:
            return super()._run_step(sample, upstream)

    assert plain_steps(OwnCall()) == ()
    assert plain_steps(Compose(OwnCall())) == (Compose(OwnCall()).steps[0],)  # called by step
    # The pydantic plugin gives a subclass a keyword __init__; Compose takes steps positionally.
    assert plain_steps(OwnChain(AddStep())) == ()  # type: ignore[call-arg]
    assert plain_steps(Compose(AddStep(), OwnChain(AddStep()))) == ()  # type: ignore[call-arg]
