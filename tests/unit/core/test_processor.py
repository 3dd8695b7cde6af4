from __future__ import annotations

import pickle

import pytest

from datamultiproc import BaseSample, ProcessingError, Processor
from datamultiproc.core import recording
from tests.helpers import AddStep, DoubleStep, FailOn, NumberSample, ReturnsNone


class Hidden(Processor):
    step_size: int
    _hidden_arg: int = 1

    def process(self, sample: NumberSample) -> NumberSample:
        sample.data = sample.data + self.step_size + self._hidden_arg
        return sample


class ReturnsOther(Processor):
    def process(self, sample: NumberSample) -> int:
        return 42


class NotImplemented_(Processor):
    pass


def test_call_runs_process_and_appends_history() -> None:
    sample = AddStep(step_size=2)(NumberSample(id="a", data=1))
    assert sample.data == 3
    assert sample.processing_history == [("AddStep", "step_size=2")]


def test_processor_without_parameters_records_empty_params() -> None:
    sample = DoubleStep()(NumberSample(id="a", data=2))
    assert sample.processing_history == [("DoubleStep", "")]


def test_private_attributes_are_not_parameters() -> None:
    step = Hidden(step_size=2)
    assert step(NumberSample(id="a", data=0)).data == 3
    assert "hidden" not in repr(step)
    assert list(Hidden.model_fields) == ["step_size"]


def test_exception_becomes_processing_error_with_cause() -> None:
    with pytest.raises(ProcessingError) as info:
        FailOn(ids=["bad"])(NumberSample(id="bad", data=0))
    error = info.value
    assert error.sample_id == "bad"
    assert error.processor == "FailOn"
    assert isinstance(error.__cause__, ValueError)
    for part in ("'bad'", "FailOn", "ValueError: bad sample bad"):
        assert part in str(error)


def test_returning_none_is_an_error_with_a_hint() -> None:
    with pytest.raises(ProcessingError, match="forget to return"):
        ReturnsNone()(NumberSample(id="a", data=0))


def test_returning_a_non_sample_is_an_error() -> None:
    with pytest.raises(ProcessingError, match="returned int"):
        ReturnsOther()(NumberSample(id="a", data=0))


def test_missing_process_is_reported() -> None:
    with pytest.raises(ProcessingError, match="must implement process"):
        NotImplemented_()(NumberSample(id="a", data=0))


def test_calling_with_a_non_sample_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="expects a BaseSample"):
        AddStep()(42)


def test_processing_error_survives_pickle() -> None:
    error = ProcessingError("boom", sample_id="a", processor="Step")
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.sample_id, copy.processor) == ("boom", "a", "Step")


def test_equality_by_class_and_parameters() -> None:
    assert AddStep(step_size=2) == AddStep(step_size=2)
    assert AddStep(step_size=2) != AddStep(step_size=3)
    assert AddStep() != DoubleStep()
    assert hash(AddStep(step_size=2)) == hash(AddStep(step_size=2))


def test_equality_ignores_private_state() -> None:
    first, second = Hidden(step_size=1), Hidden(step_size=1)
    second._hidden_arg = 5
    assert first == second


def test_repr_is_stable_and_readable() -> None:
    assert repr(AddStep(step_size=2)) == "AddStep(step_size=2)"


def test_unknown_parameter_is_rejected() -> None:
    with pytest.raises(ValueError, match="step_sise"):
        AddStep(step_sise=2)  # type: ignore[call-arg]


def test_parameters_are_validated() -> None:
    with pytest.raises(ValueError, match="step_size"):
        AddStep(step_size="two")


def test_records_steps_when_recording() -> None:
    with recording() as recorder:
        AddStep(step_size=2)(NumberSample(id="a", data=1))
    [record] = recorder.records
    assert (record.step, record.stage, record.params, record.status) == (
        0,
        "AddStep",
        "step_size=2",
        "ok",
    )
    assert record.seconds >= 0


def test_records_failed_step() -> None:
    with recording() as recorder, pytest.raises(ProcessingError):
        FailOn(ids=["a"])(NumberSample(id="a", data=1))
    assert [r.status for r in recorder.records] == ["failed"]


def test_setup_default_is_a_no_op() -> None:
    step = AddStep(step_size=2)
    step.setup()  # returns None (typed so); it must also leave the step unchanged
    assert step == AddStep(step_size=2)
    assert step.__pydantic_private__ == AddStep(step_size=2).__pydantic_private__


def test_base_sample_subclass_instances_pass_through() -> None:
    class Other(BaseSample):
        value: float = 0.0

    assert AddStep.model_fields["step_size"].default == 1
    assert DoubleStep()(NumberSample(id="x", data=4)).data == 8
    assert isinstance(Other(id="o"), BaseSample)
