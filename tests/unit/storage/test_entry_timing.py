"""Compute seconds stored with each cache entry, and seconds saved on an all-hit rerun."""

from __future__ import annotations

import math
import pickle
from pathlib import Path
from typing import cast

from datamultiproc import BaseSample, Cache, Save, run
from datamultiproc.core import SampleRecord, StepRecord
from datamultiproc.execution import RunResult
from datamultiproc.storage._files import read_entry, read_seconds, write_pickle_atomic
from tests.helpers import NumberSample, SlowStep, number_samples


def test_an_entry_stores_its_compute_time_and_stays_a_plain_pickle(cache_dir: Path) -> None:
    cache = Cache(processor=SlowStep(seconds=0.03), cache_dir=cache_dir)
    sample = number_samples(1)[0]
    cache(sample)
    path = cache.entry_path(sample)
    seconds = read_seconds(path)
    assert seconds is not None
    assert seconds >= 0.03
    with path.open("rb") as handle:
        assert pickle.load(handle).id == sample.id  # any pickle reader ignores the trailer
    assert BaseSample.read_file(path).id == sample.id
    loaded, size, stored = read_entry(path)
    assert (loaded.id, size, stored) == (sample.id, path.stat().st_size, seconds)


def test_files_without_a_trailer_have_no_stored_time(tmp_path: Path) -> None:
    path = tmp_path / "plain.pickle"
    write_pickle_atomic(path, NumberSample(id="a", data=1))
    assert read_seconds(path) is None
    assert read_entry(path)[2] is None
    Save(save_to_dir=tmp_path / "saved")(NumberSample(id="b", data=1, processing_history=[]))
    assert read_seconds(next((tmp_path / "saved").rglob("*.pickle"))) is None
    assert read_seconds(tmp_path / "missing.pickle") is None


def test_seconds_saved_on_an_all_hit_rerun_is_the_stored_time(cache_dir: Path) -> None:
    def again() -> RunResult[NumberSample]:
        cache = Cache(processor=SlowStep(seconds=0.02), cache_dir=cache_dir)
        return run(cache, number_samples(3), backend="sequential", progress=False)

    again()
    rerun = again()
    stats = rerun.cache_stats()
    assert stats.loc["SlowStep", "misses"] == 0
    loading = float(rerun.history()["seconds"].sum())
    assert cast(float, stats.loc["SlowStep", "seconds_saved"]) >= 3 * 0.02 - loading


def test_hits_of_old_entries_fall_back_to_the_misses_mean() -> None:
    def record(index: int, hit: bool, seconds: float, computed: float | None) -> SampleRecord:
        step = StepRecord(0, "Load", "", seconds, hit, computed_seconds=computed)
        return SampleRecord(index, f"s{index}", "w", "ok", (step,))

    timed: RunResult[BaseSample] = RunResult(
        records=[record(0, True, 0.1, 2.0), record(1, True, 0.1, 3.0)]
    )
    assert timed.cache_stats().loc["Load", "seconds_saved"] == 2.0 + 3.0 - 0.2
    mixed: RunResult[BaseSample] = RunResult(
        records=[record(0, True, 0.1, None), record(1, False, 4.0, None)]
    )
    assert mixed.cache_stats().loc["Load", "seconds_saved"] == 4.0 - 0.1
    old: RunResult[BaseSample] = RunResult(records=[record(0, True, 0.1, None)])
    assert math.isnan(cast(float, old.cache_stats().loc["Load", "seconds_saved"]))
