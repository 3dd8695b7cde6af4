"""Every public type survives a round trip through pickle, cloudpickle and dill.

Processors, samples and results travel to worker processes and into cache files, and
users keep results with any of the three; a type that stops round-tripping breaks that.
"""

from __future__ import annotations

import datetime
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cloudpickle
import dill
import numpy as np
import pytest

import datamultiproc
from datamultiproc import (
    Cache,
    Compose,
    ProcessingError,
    RunResult,
    Save,
    SavedSamples,
    StepRecord,
    TableProblem,
    history_frame,
    load_saved,
    run,
    samples_frame,
)
from datamultiproc.core import FailureRecord, SampleRecord
from datamultiproc.execution import (
    Outcome,
    RunFinished,
    RunOptions,
    RunStarted,
    SampleFinished,
    imap,
)
from datamultiproc.storage import CacheConfigRecord, CacheStats, Plan, SavedFile, StagePlan
from tests.helpers import AddStep, ArraySample, DoubleStep, NumberSample

SERIALIZERS = [pickle, cloudpickle, dill]

STEP = StepRecord(
    0, "AddStep", "step_size=1", 0.25, cache_hit=False, bytes_written=10, reason="new sample"
)
SAMPLE_RECORD = SampleRecord(0, "a", "process-1", "ok", (STEP,))
FAILURE = FailureRecord(1, "b", "AddStep", "ValueError", "bad", "Traceback ...", "process-1")


def _result() -> RunResult[NumberSample]:
    return RunResult(
        samples=[NumberSample(id="a", data=2)],
        failures=[FAILURE],
        records=[SAMPLE_RECORD],
        status="failed",
        wall_seconds=1.5,
        backend="process",
        workers=2,
        options=RunOptions(workers=2, progress=False, on_error="skip"),
    )


#: One example of each public type, by the name it is exported under.
EXAMPLES: dict[str, Callable[[], Any]] = {
    "BaseSample": lambda: ArraySample(id="x", array=np.arange(4.0)),
    "Cache": lambda: Cache(processor=AddStep(step_size=3), cache_dir="cache", key="content"),
    "Compose": lambda: Compose(AddStep(), DoubleStep(), Compose(AddStep(step_size=2))),
    "Processor": lambda: AddStep(step_size=5),
    "RunResult": _result,
    "Save": lambda: Save(save_to_dir=Path("out")),
    "StepRecord": lambda: STEP,
    "SampleRecord": lambda: SAMPLE_RECORD,
    "FailureRecord": lambda: FAILURE,
    "Outcome": lambda: Outcome(0, NumberSample(id="a", data=1), SAMPLE_RECORD, None),
    "RunOptions": lambda: RunOptions(workers=3, chunksize=8, timeout=2.5, ordered=False),
    "RunStarted": lambda: RunStarted(10, ("AddStep", "Cache"), "process", 2),
    "SampleFinished": lambda: SampleFinished(SAMPLE_RECORD, FAILURE),
    "RunFinished": lambda: RunFinished("complete", 10, 0, 1.25),
    "CacheStats": lambda: CacheStats(hits=3, misses=1, recomputed=1, bytes_read=7),
    "CacheConfigRecord": lambda: CacheConfigRecord(
        stage="AddStep",
        configuration="0123abcd",
        entries=2,
        bytes=20,
        last_written=datetime.datetime(2026, 1, 2, 3, 4, 5),
        processor="AddStep(step_size=1)",
        upstream=("Load",),
        key="id",
        path=Path("cache/AddStep/0123abcd"),
    ),
    "Plan": lambda: Plan(
        10,
        (StagePlan("AddStep", "AddStep/0123", "cache", 8, 2, 0, {"new sample": 2}, 0.5),),
    ),
    "run": lambda: run,
    "imap": lambda: imap,
    "history_frame": lambda: history_frame,
    "Trace": lambda: Compose(AddStep(), DoubleStep()).trace(NumberSample(id="a", data=1)),
    "TraceStep": lambda: AddStep().trace(NumberSample(id="a", data=1)).steps[0],
    "samples_frame": lambda: samples_frame,
    "load_saved": lambda: load_saved,
    "TableProblem": lambda: TableProblem("row-3", "size", "Input should be a valid integer"),
    "SavedSamples": lambda: SavedSamples(
        [SavedFile("a", "out/Load/a.pickle", "0123abcd", 1_700_000_000_000_000_000)],
        sample_class=NumberSample,
        configurations={"0123abcd": {"upstream": ["Load()"]}},
        with_configuration=True,
    ),
}


def _equal(copy: Any, original: Any) -> bool:
    if isinstance(original, SavedSamples):
        return bool(copy.files == original.files and copy.configurations == original.configurations)
    if isinstance(original, ArraySample):
        return copy.id == original.id and np.array_equal(copy.array, original.array)
    return bool(copy == original)


def test_every_public_type_has_an_example() -> None:
    public = {
        name
        for name in datamultiproc.__all__
        if isinstance(getattr(datamultiproc, name), type) or callable(getattr(datamultiproc, name))
    }
    errors = {name for name in public if issubclass_safe(getattr(datamultiproc, name))}
    assert public - errors - set(EXAMPLES) == set()


def issubclass_safe(obj: Any) -> bool:
    """Whether ``obj`` is an exception or warning class (round-tripped in test_public_api)."""
    return isinstance(obj, type) and issubclass(obj, BaseException | Warning)


@pytest.mark.parametrize("serializer", SERIALIZERS, ids=lambda s: s.__name__)
@pytest.mark.parametrize("name", list(EXAMPLES))
def test_round_trip(serializer: Any, name: str) -> None:
    original = EXAMPLES[name]()
    copy = serializer.loads(serializer.dumps(original))
    assert type(copy) is type(original)
    assert _equal(copy, original)


@pytest.mark.parametrize("serializer", SERIALIZERS, ids=lambda s: s.__name__)
def test_a_round_tripped_pipeline_still_runs(serializer: Any) -> None:
    pipeline = serializer.loads(serializer.dumps(Compose(AddStep(), DoubleStep())))
    result = pipeline.run([NumberSample(id="a", data=1)], backend="sequential", progress=False)
    assert [s.data for s in result] == [4]
    assert result.samples[0].processing_history == [
        ("AddStep", "step_size=1"),
        ("DoubleStep", ""),
    ]


@pytest.mark.parametrize("serializer", SERIALIZERS, ids=lambda s: s.__name__)
def test_a_processing_error_keeps_its_sample_and_stage(serializer: Any) -> None:
    error = ProcessingError("sample 'a' failed in AddStep", sample_id="a", processor="AddStep")
    copy = serializer.loads(serializer.dumps(error))
    assert (copy.sample_id, copy.processor, str(copy)) == ("a", "AddStep", str(error))


@pytest.mark.parametrize("serializer", SERIALIZERS, ids=lambda s: s.__name__)
def test_a_round_tripped_result_keeps_its_views(serializer: Any) -> None:
    copy = serializer.loads(serializer.dumps(_result()))
    assert copy.n_ok == 1
    assert copy.n_failed == 1
    assert repr(copy) == repr(_result())
    assert copy.options.changed() == {"workers": 2, "progress": False, "on_error": "skip"}
