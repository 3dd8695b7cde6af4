"""Outcomes have named fields in the parent and travel as plain tuples."""

from __future__ import annotations

import pickle

from datamultiproc import Compose
from datamultiproc.core import StepRecord
from datamultiproc.execution._codec import SampleState, decode_outcomes, restore_sample
from datamultiproc.execution._job import to_outcome
from datamultiproc.execution._worker import (
    RawFailure,
    RawOutcome,
    prepare_pipeline,
    run_sample,
    shipped,
)
from tests.helpers import AddStep, FailOn, NumberSample


def test_run_sample_names_its_outcome_and_failure() -> None:
    ok = run_sample(AddStep(step_size=2), 4, NumberSample(id="a", data=1))
    assert isinstance(ok, RawOutcome)
    assert (ok.index, ok.sample_id, ok.sample.data, ok.failure) == (4, "a", 3, None)
    assert [step.stage for step in ok.steps] == ["AddStep"]
    failed = run_sample(Compose(AddStep(), FailOn(ids=["b"])), 5, NumberSample(id="b", data=1))
    assert isinstance(failed.failure, RawFailure)
    assert (failed.sample, failed.failure.stage, failed.failure.error_type) == (
        None,
        "FailOn",
        "ValueError",
    )


def test_shipped_outcomes_are_plain_tuples_that_keep_every_field() -> None:
    record = StepRecord._make(f"v{i}" for i in range(len(StepRecord._fields)))
    raw = RawOutcome(3, "a", NumberSample(id="a", data=7), (record,), None)
    wire = shipped(raw, {})
    assert type(wire) is tuple
    assert all(type(part) is tuple for part in (wire[2], *wire[3]))
    # A field added to StepRecord but not shipped makes _make fail here.
    assert StepRecord._make(wire[3][0]) == record
    assert wire[2] is not None
    assert restore_sample(SampleState._make(wire[2])) == raw.sample
    (decoded,) = decode_outcomes(pickle.dumps([wire]))
    outcome = to_outcome(decoded, "w")
    assert (outcome.index, outcome.sample, outcome.record.steps) == (3, raw.sample, (record,))


def test_a_failing_setup_is_named_as_such() -> None:
    class BadSetup(AddStep):
        def setup(self) -> None:
            msg = "no model"
            raise OSError(msg)

    failure = prepare_pipeline(BadSetup())
    assert failure is not None
    assert (failure.stage, failure.error_type, failure.message) == (
        "setup",
        "OSError",
        "setup() failed: no model",
    )
