"""plan(): hits, misses, reasons and estimated seconds per cached stage, running nothing."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import pytest

from datamultiproc import Cache, Compose, Plan, Processor, RunResult, Save, run
from datamultiproc.storage import plan
from tests.helpers import AddStep, DoubleStep, SlowStep, number_samples


def _files(root: Path) -> list[tuple[str, int]]:
    if not root.exists():
        return []
    return sorted((str(p), p.stat().st_mtime_ns) for p in root.rglob("*"))


def _run(pipeline: Processor, count: int) -> RunResult[Any]:
    return run(pipeline, number_samples(count), backend="sequential", progress=False)


def test_plan_runs_nothing_and_writes_nothing(cache_dir: Path) -> None:
    cache = Cache(processor=AddStep(), cache_dir=cache_dir)
    samples = number_samples(5)
    planned = cache.plan(samples)
    assert not cache_dir.exists()
    assert [s.data for s in samples] == list(range(5))
    assert (planned.stages[0].hits, planned.stages[0].misses) == (0, 5)
    assert planned.stages[0].reasons == {"new configuration": 5}
    _run(cache, 3)
    before = _files(cache_dir)
    again = Cache(processor=AddStep(), cache_dir=cache_dir).plan(number_samples(5))
    assert _files(cache_dir) == before
    assert (again.stages[0].hits, again.stages[0].misses) == (3, 2)
    assert again.stages[0].reasons == {"new sample": 2}


def test_plan_predicts_what_the_run_does(cache_dir: Path) -> None:
    def pipeline(step: int) -> Compose:
        return Compose(
            Cache(processor=AddStep(step_size=step), cache_dir=cache_dir),
            Save(save_to_dir=cache_dir.parent / "saved"),
            Cache(processor=DoubleStep(), cache_dir=cache_dir),
        )

    _run(pipeline(1), 6)
    planned = pipeline(2).plan(number_samples(8))
    assert [(s.stage, s.hits, s.misses) for s in planned.stages] == [
        ("AddStep", 0, 8),
        ("DoubleStep", 0, 8),
    ]
    assert planned.stages[0].reasons == {"parameter step_size: 1 → 2": 8}
    assert planned.stages[1].reasons == {"upstream AddStep: parameter step_size 1 → 2": 8}
    result = _run(pipeline(2), 8)
    stats = result.cache_stats()
    for stage in planned.stages:
        assert stats.loc[stage.stage, "hits"] == stage.hits
        assert stats.loc[stage.stage, "misses"] == stage.misses


def test_estimated_seconds_come_from_stored_timings(cache_dir: Path) -> None:
    _run(Cache(processor=SlowStep(seconds=0.02), cache_dir=cache_dir), 3)
    same = Cache(processor=SlowStep(seconds=0.02), cache_dir=cache_dir).plan(number_samples(5))
    assert same.stages[0].misses == 2
    assert same.stages[0].estimated_seconds >= 2 * 0.02
    # A new configuration estimates from the closest earlier one.
    other = Cache(processor=SlowStep(seconds=0.021), cache_dir=cache_dir).plan(number_samples(4))
    assert other.stages[0].estimated_seconds >= 4 * 0.02
    fresh = Cache(processor=AddStep(), cache_dir=cache_dir).plan(number_samples(4))
    assert math.isnan(fresh.stages[0].estimated_seconds)


def test_nested_cache_is_planned_for_the_outer_misses_only(cache_dir: Path) -> None:
    inner = Cache(processor=AddStep(), cache_dir=cache_dir / "inner")
    _run(inner, 4)
    outer = Cache(processor=Compose(inner, DoubleStep()), cache_dir=cache_dir / "outer")
    _run(outer, 2)
    planned = outer.plan(number_samples(6))
    assert [(s.stage, s.hits, s.misses) for s in planned.stages] == [
        ("Compose", 2, 4),
        ("AddStep", 2, 2),
    ]


def test_content_key_after_steps_that_have_not_run_is_unknown(cache_dir: Path) -> None:
    def pipeline() -> Compose:
        return Compose(AddStep(), Cache(processor=DoubleStep(), cache_dir=cache_dir, key="content"))

    new = pipeline().plan(number_samples(4)).stages[0]
    assert (new.hits, new.misses, new.unknown) == (0, 4, 0)  # a new configuration: all miss
    _run(pipeline(), 4)
    known = pipeline().plan(number_samples(4)).stages[0]
    assert (known.hits, known.misses, known.unknown) == (0, 0, 4)
    assert "unknown" in repr(pipeline().plan(number_samples(4)))


def test_content_key_of_the_input_is_checked(cache_dir: Path) -> None:
    cache = Cache(processor=DoubleStep(), cache_dir=cache_dir, key="content")
    _run(cache, 4)
    samples = number_samples(4)
    samples[0].data = 99
    stage = cache.plan(samples).stages[0]
    assert (stage.hits, stage.misses, stage.unknown) == (3, 1, 0)


def test_plan_frame_and_html(cache_dir: Path) -> None:
    _run(Cache(processor=AddStep(step_size=1), cache_dir=cache_dir), 3)
    planned = Cache(processor=AddStep(step_size=2), cache_dir=cache_dir).plan(number_samples(3))
    assert isinstance(planned, Plan)
    frame = planned.to_frame()
    assert {"stage", "hits", "misses", "reasons", "estimated_seconds"} <= set(frame.columns)
    assert frame.loc[0, "reasons"] == "parameter step_size: 1 → 2 (3)"
    page = planned._repr_html_()
    assert "<script" not in page
    assert "AddStep" in page
    assert "1 → 2" in page
    assert "color:inherit" in page  # follows the notebook theme, light or dark


def test_plan_rejects_non_samples(cache_dir: Path) -> None:
    with pytest.raises(TypeError, match="plan"):
        plan(Cache(processor=AddStep(), cache_dir=cache_dir), [1, 2])


def test_plan_checks_entries_without_opening_them(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = Cache(processor=AddStep(), cache_dir=cache_dir)
    _run(cache, 50)
    opened: list[str] = []
    real_open = open

    def spy(path: str | os.PathLike[str], *args: object, **kwargs: object) -> object:
        opened.append(os.fspath(path))
        return real_open(path, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr("builtins.open", spy)
    stage = Cache(processor=AddStep(), cache_dir=cache_dir).plan(number_samples(60)).stages[0]
    assert (stage.hits, stage.misses) == (50, 10)
    assert len([p for p in opened if p.endswith(".pickle")]) <= 25  # timing trailers only
