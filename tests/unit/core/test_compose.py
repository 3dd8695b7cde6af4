from __future__ import annotations

import pickle

import cloudpickle
import dill
import pytest

from datamultiproc import Compose, ProcessingError
from datamultiproc.core import FunctionStep, recording
from tests.helpers import AddStep, DoubleStep, FailOn, NumberSample


def increment(sample: NumberSample) -> NumberSample:
    sample.data += 100
    return sample


def test_positional_and_list_spellings_are_equal() -> None:
    assert Compose(AddStep(), DoubleStep()) == Compose([AddStep(), DoubleStep()])
    assert Compose((AddStep(),)) == Compose(AddStep())


def test_steps_run_in_order() -> None:
    sample = Compose(AddStep(step_size=1), DoubleStep())(NumberSample(id="a", data=1))
    assert sample.data == 4
    assert [stage for stage, _ in sample.processing_history] == ["AddStep", "DoubleStep"]


def test_nested_compose() -> None:
    inner = Compose(AddStep(step_size=1), DoubleStep())
    sample = Compose(inner, AddStep(step_size=10))(NumberSample(id="a", data=1))
    assert sample.data == 14
    assert len(sample.processing_history) == 3
    assert Compose(inner, AddStep()).iter_processors() == (
        AddStep(step_size=1),
        DoubleStep(),
        AddStep(),
    )


def test_compose_adds_no_history_of_its_own() -> None:
    sample = Compose(AddStep())(NumberSample(id="a", data=1))
    assert sample.processing_history == [("AddStep", "step_size=1")]


def test_plain_functions_are_steps() -> None:
    pipeline = Compose(AddStep(), increment)
    assert isinstance(pipeline.steps[1], FunctionStep)
    sample = pipeline(NumberSample(id="a", data=0))
    assert sample.data == 101
    assert sample.processing_history[-1] == ("increment", "")


def test_empty_compose_is_rejected() -> None:
    with pytest.raises(ValueError, match="at least one step"):
        Compose()
    with pytest.raises(ValueError, match="at least one step"):
        Compose([])


@pytest.mark.parametrize("bad", [42, "AddStep", None])
def test_non_callable_step_is_rejected(bad: object) -> None:
    with pytest.raises(TypeError, match="step 1"):
        Compose(AddStep(), bad)  # type: ignore[arg-type]


def test_processor_class_instead_of_instance_is_rejected() -> None:
    with pytest.raises(TypeError, match=r"pass an instance, e\.g\. AddStep\(\)"):
        Compose(AddStep)  # type: ignore[arg-type]


def test_repr_shows_steps() -> None:
    assert (
        repr(Compose(AddStep(step_size=2), DoubleStep()))
        == "Compose(AddStep(step_size=2), DoubleStep())"
    )


def test_error_names_the_failing_stage() -> None:
    with pytest.raises(ProcessingError) as info:
        Compose(AddStep(), FailOn(ids=["a"]), DoubleStep())(NumberSample(id="a", data=0))
    assert info.value.processor == "FailOn"
    assert isinstance(info.value.__cause__, ValueError)


def test_records_one_entry_per_leaf_step() -> None:
    with recording() as recorder:
        Compose(Compose(AddStep(), DoubleStep()), AddStep())(NumberSample(id="a", data=0))
    assert [(r.step, r.stage) for r in recorder.records] == [
        (0, "AddStep"),
        (1, "DoubleStep"),
        (2, "AddStep"),
    ]


@pytest.mark.parametrize(
    "serializer", [pickle, dill, cloudpickle], ids=["pickle", "dill", "cloudpickle"]
)
def test_compose_round_trips(serializer: object) -> None:
    pipeline = Compose(Compose(AddStep(step_size=3)), DoubleStep())
    copy = serializer.loads(serializer.dumps(pipeline))  # type: ignore[attr-defined]
    assert copy == pipeline
    assert hash(copy) == hash(pipeline)
    assert copy(NumberSample(id="a", data=1)).data == 8


def test_setup_reaches_nested_steps() -> None:
    calls: list[str] = []

    class Tracking(AddStep):
        def setup(self) -> None:
            calls.append("setup")

    Compose(Compose(Tracking()), Tracking()).setup()
    assert calls == ["setup", "setup"]
