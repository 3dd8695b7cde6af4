"""Processor.trace(): one sample, stage by stage, in this process, writing nothing."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from datamultiproc import BaseSample, Cache, Compose, Processor, Save
from tests.helpers import (
    AddStep,
    ArraySample,
    DoubleStep,
    FailOn,
    NumberSample,
    ReturnsNone,
    SetupLog,
)


class Blur(Processor):
    def process(self, sample: ArraySample) -> ArraySample:
        sample.array = sample.array * 0.5  # a new array: the input's stays as it was
        return sample


class InPlace(Processor):
    def process(self, sample: ArraySample) -> ArraySample:
        sample.array += 1  # changes the array in place
        sample.data += 1
        return sample


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes() if path.is_file() else b"<dir>"
        for path in sorted(root.rglob("*"))
    }


def _data(sample: BaseSample) -> int:
    assert isinstance(sample, NumberSample)
    return sample.data


def _image_sample() -> ArraySample:
    return ArraySample(id="tile", array=np.arange(64, dtype=float).reshape(8, 8))


def test_trace_with_cache_save_and_a_failing_stage_writes_nothing(tmp_path: Path) -> None:
    cached = Cache(processor=Blur(), cache_dir=tmp_path / "cache")
    pipeline = Compose(
        cached, InPlace(), Save(save_to_dir=tmp_path / "save"), FailOn(ids=["tile"]), AddStep()
    )
    sample = _image_sample()
    before = _tree(tmp_path)
    trace = pipeline.trace(sample)
    assert _tree(tmp_path) == before == {}
    assert sample == _image_sample()  # the input is untouched
    assert [step.stage for step in trace] == ["Blur", "InPlace", "Save"]
    assert [step.cache for step in trace] == ["miss: new configuration", "-", "-"]
    assert isinstance(trace.error, ValueError)
    assert str(trace.error) == "bad sample tile"
    assert trace.failed_stage == "FailOn"
    assert not trace.ok
    assert "raise ValueError(msg)" in trace.traceback
    assert "tests/helpers.py" in trace.traceback
    assert trace.stages == ("Blur", "InPlace", "Save", "FailOn", "AddStep")
    assert cached.stats.hits == cached.stats.misses == 0  # a trace is not counted


def test_trace_loads_a_cache_hit_and_snapshots_each_stage(tmp_path: Path) -> None:
    cached = Cache(processor=Blur(), cache_dir=tmp_path / "cache")
    pipeline = Compose(cached, InPlace())
    pipeline(_image_sample())  # stores the entry
    before = _tree(tmp_path)
    trace = pipeline.trace(_image_sample())
    assert _tree(tmp_path) == before
    assert [step.cache for step in trace] == ["hit", "-"]
    assert [step.changed for step in trace] == [("array",), ("data", "array")]
    # Snapshots are copies: InPlace changed the array in place after Blur's snapshot.
    blurred, in_place = trace["Blur"], trace[1]
    assert isinstance(blurred, ArraySample)
    assert isinstance(in_place, ArraySample)
    assert blurred.array[0, 1] == 0.5
    assert in_place.array[0, 1] == 1.5
    assert trace["InPlace"].processing_history == [("Blur", ""), ("InPlace", "")]
    assert trace.output is trace[-1]
    assert trace.input == _image_sample()
    assert all(step.seconds >= 0 for step in trace)


def test_trace_of_nested_composes_has_one_entry_per_leaf() -> None:
    trace = Compose(AddStep(), Compose(DoubleStep(), AddStep(step_size=5))).trace(
        NumberSample(id="a", data=1)
    )
    assert [(step.stage, _data(step.sample)) for step in trace] == [
        ("AddStep", 2),
        ("DoubleStep", 4),
        ("AddStep", 9),
    ]
    assert _data(trace["AddStep"]) == 2  # a repeated name gives its first use
    assert len(trace) == 3


def test_trace_keys_and_arguments_are_checked() -> None:
    trace = AddStep().trace(NumberSample(id="a", data=1))
    with pytest.raises(KeyError, match="no stage 'Nope' in this trace; stages that ran: 'AddStep'"):
        trace["Nope"]
    with pytest.raises(TypeError, match="key must be a stage position"):
        trace[1.5]  # type: ignore[index]
    with pytest.raises(TypeError, match=r"AddStep.trace\(\) expects a BaseSample"):
        AddStep().trace(5)


def test_a_stage_returning_none_stops_the_trace_with_the_error() -> None:
    trace = Compose(AddStep(), ReturnsNone()).trace(NumberSample(id="a", data=1))
    assert [step.stage for step in trace] == ["AddStep"]
    assert "did process() forget to return the sample?" in str(trace.error)


def test_to_frame_has_one_row_per_stage_and_the_error() -> None:
    trace = Compose(AddStep(), FailOn(ids=["a"])).trace(NumberSample(id="a", data=1))
    frame = trace.to_frame()
    assert list(frame.columns) == ["stage", "seconds", "cache", "changed"]
    assert frame["stage"].tolist() == ["AddStep", "FailOn"]
    assert frame["changed"].tolist() == ["data", "error: ValueError: bad sample a"]
    assert frame["seconds"].dtype == "float64"
    assert np.isnan(frame["seconds"].iloc[1])


class _Cells(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.changed = 0
        self.images = 0
        self.headers: list[str] = []
        self._in_th = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = dict(attrs).get("class") or ""
        self.changed += tag == "td" and "dmp-changed" in classes
        self.images += tag == "img"
        self._in_th = tag == "th"

    def handle_data(self, data: str) -> None:
        if self._in_th and data.strip():
            self.headers.append(data.strip())
            self._in_th = False


def test_html_shows_stages_side_by_side_with_changes_and_the_error() -> None:
    trace = Compose(Blur(), InPlace(), FailOn(ids=["tile"])).trace(_image_sample())
    page = trace._repr_html_()
    cells = _Cells()
    cells.feed(page)
    assert {"input", "Blur", "InPlace", "FailOn ✗"} <= set(cells.headers)
    assert cells.changed == 3  # Blur: array; InPlace: data and array
    assert cells.images == 3  # the input's array and the two changed ones
    assert "bad sample tile" in page
    assert "traceback" in page
    assert repr(trace) == (
        "Trace('tile': Blur (-), InPlace (-); failed in FailOn: ValueError: bad sample tile)"
    )


def test_a_cache_miss_says_why_as_a_run_would(tmp_path: Path) -> None:
    Compose(Cache(processor=AddStep(step_size=1), cache_dir=tmp_path)).run(
        [NumberSample(id="a", data=1)], backend="sequential", progress=False
    )
    before = _tree(tmp_path)
    same = Compose(Cache(processor=AddStep(step_size=1), cache_dir=tmp_path))
    changed = Compose(Cache(processor=AddStep(step_size=2), cache_dir=tmp_path))
    assert same.trace(NumberSample(id="a", data=1)).steps[0].cache == "hit"
    assert same.trace(NumberSample(id="b", data=1)).steps[0].cache == "miss: new sample"
    reason = changed.trace(NumberSample(id="a", data=1)).steps[0].cache
    assert reason.startswith("miss: ")
    assert "step_size" in reason
    assert _tree(tmp_path) == before


def test_trace_runs_setup_first_and_reports_a_failing_setup(tmp_path: Path) -> None:
    log = tmp_path / "setup.log"
    trace = Compose(AddStep(), SetupLog(path=str(log))).trace(NumberSample(id="a", data=1))
    assert trace.ok
    assert len(log.read_text().splitlines()) == 1

    class BrokenSetup(Processor):
        def setup(self) -> None:
            msg = "no model file"
            raise OSError(msg)

    broken = Compose(AddStep(), BrokenSetup()).trace(NumberSample(id="a", data=1))
    assert (broken.failed_stage, str(broken.error), len(broken)) == ("setup", "no model file", 0)
