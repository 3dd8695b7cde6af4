"""A first run's decision, without processes: the transfer estimate and the policy."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from datamultiproc import Compose
from datamultiproc.execution._codec import encode_pipeline
from datamultiproc.execution._firstrun import estimated_pace, sets_up, transfer_seconds
from datamultiproc.execution._inline import ParentRunner
from datamultiproc.execution._policy import InlineFigures, InlinePolicy
from datamultiproc.storage import Cache
from tests.helpers import AddStep, AnySample, ArraySample, SetupLog, number_samples


def test_a_first_run_probes_the_parent_before_any_worker() -> None:
    policy = InlinePolicy()
    policy.start_first(2)
    assert not policy.needs_workers
    assert policy.chunk_size() > 0
    assert policy.probing
    policy.observe_first(5e-6, 6e-6)  # tiny samples: moving one costs more than running it
    assert policy.active
    assert not policy.needs_workers
    assert policy.chunk_size() > 0
    figures = policy.figures()
    assert figures is not None  # the next run recalls them
    estimate = estimated_pace(5e-6, 6e-6, workers=2, cores=2)
    assert estimate <= figures.pace <= 4 * estimate  # workers yet to start: a wider hysteresis


@pytest.mark.parametrize("inline", [2e-3, 20e-6, float("inf")])
def test_a_first_run_whose_probe_loses_needs_the_workers(inline: float) -> None:
    policy = InlinePolicy()
    policy.start_first(2)
    policy.chunk_size()
    policy.observe_first(inline, 6e-6)
    assert policy.needs_workers
    assert not policy.active
    assert policy.pace is None  # nothing recalled: the workers' own figures decide from here
    assert policy.inline is None  # nor does this probe count once they are measured
    assert policy.chunk_size() == 0
    assert policy.figures() is None


def test_a_first_run_that_got_expensive_goes_to_the_workers() -> None:
    policy = InlinePolicy()
    policy.start_first(2)
    policy.chunk_size()
    policy.observe_first(5e-6, 6e-6)
    policy.observe_inline(1e-3, 1)
    assert policy.chunk_size() == 0
    assert policy.needs_workers
    assert policy.inline is None  # the mixed figure must not win the samples back later


def test_no_first_run_probe_when_disabled_or_recalled() -> None:
    disabled = InlinePolicy(enabled=False)
    disabled.start_first(2)
    assert disabled.needs_workers
    assert disabled.chunk_size() == 0
    recalled = InlinePolicy()
    recalled.recall(InlineFigures(pace=50e-6, work=10e-6, transfer=20e-6))
    recalled.start_first(2)
    assert not recalled.first_run


def test_the_pace_estimate_is_bounded_by_parent_workers_and_cores() -> None:
    tiny = estimated_pace(5e-6, 6e-6, workers=2, cores=2)
    assert tiny > 5e-6 * 1.2  # the parent wins tiny samples
    heavy = estimated_pace(2e-3, 6e-6, workers=2, cores=2)
    assert heavy < 2e-3  # two workers halve CPU-heavy samples
    assert estimated_pace(2e-3, 6e-6, workers=8, cores=2) > 1e-3  # but not past the cores
    assert estimated_pace(1e-6, 1e-3, workers=2, cores=2) >= 1e-3  # nor past the parent


def test_transfer_counts_the_results_and_large_buffers() -> None:
    items = list(enumerate(number_samples(8)))
    inputs = transfer_seconds(items)
    assert inputs is not None
    assert 0 < inputs < 0.01
    runner = ParentRunner(*encode_pipeline(AddStep()))
    outcomes = runner.run(items)
    assert (transfer_seconds(items, outcomes) or 0) > 0
    small = transfer_seconds([(0, ArraySample(id="a", array=np.zeros(10)))])
    large = transfer_seconds([(0, ArraySample(id="a", array=np.zeros(1 << 22)))])
    assert small is not None
    assert large is not None
    assert large > 10 * small
    assert [s.data for _, s in items] == list(range(8))  # the samples are left as they were


def test_transfer_of_an_unpicklable_sample_is_none() -> None:
    assert transfer_seconds([(0, AnySample(id="locked", payload=threading.Lock()))]) is None


def test_sets_up_finds_a_users_setup_anywhere_in_the_pipeline(tmp_path: object) -> None:
    assert not sets_up(AddStep())
    assert not sets_up(Compose(AddStep(), AddStep(step_size=2)))
    assert not sets_up(Cache(processor=AddStep(), cache_dir=str(tmp_path)))
    assert sets_up(Compose(AddStep(), SetupLog(path="unused")))
    assert sets_up(Cache(processor=SetupLog(path="unused"), cache_dir=str(tmp_path)))
