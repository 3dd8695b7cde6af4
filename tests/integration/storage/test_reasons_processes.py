"""Miss reasons and stored compute times travel from real worker processes to the parent."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from datamultiproc import Cache
from tests.helpers import AddStep, SlowStep, number_samples

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_a_new_configuration_is_the_reason_for_every_miss_in_every_worker(
    cache_dir: Path, start_method: str
) -> None:
    options = {"workers": 2, "start_method": start_method, "progress": False, "chunksize": 1}
    Cache(processor=AddStep(step_size=1), cache_dir=cache_dir).run(number_samples(10), **options)
    result = Cache(processor=AddStep(step_size=2), cache_dir=cache_dir).run(
        number_samples(30), **options
    )
    assert len({record.worker for record in result.records}) == 2
    reasons = [step.reason for record in result.records for step in record.steps]
    assert reasons == ["parameter step_size: 1 → 2"] * 30
    stats = result.cache_stats()
    assert stats.loc["AddStep", "reasons"] == "parameter step_size: 1 → 2 (30)"


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_seconds_saved_is_a_number_on_an_all_hit_rerun(cache_dir: Path, start_method: str) -> None:
    options = {"workers": 2, "start_method": start_method, "progress": False}
    cache = Cache(processor=SlowStep(seconds=0.05), cache_dir=cache_dir)
    cache.run(number_samples(6), **options)
    rerun = Cache(processor=SlowStep(seconds=0.05), cache_dir=cache_dir).run(
        number_samples(6), **options
    )
    stats = rerun.cache_stats()
    assert stats.loc["SlowStep", "hits"] == 6
    assert stats.loc["SlowStep", "misses"] == 0
    saved = stats.loc["SlowStep", "seconds_saved"]
    assert not math.isnan(saved)
    loading = rerun.history()["seconds"].sum()
    assert saved >= 6 * 0.05 - loading  # each entry stored at least its 50 ms sleep
    computed = [step.computed_seconds for record in rerun.records for step in record.steps]
    assert all(seconds is not None and seconds >= 0.05 for seconds in computed)
