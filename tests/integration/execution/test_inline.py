"""The parent takes part: samples run in the calling process, with the workers' semantics."""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from datamultiproc import Cache, Compose, Save, run
from datamultiproc.execution import MultiprocessBackend, _policy
from datamultiproc.execution._copies import copy_sample
from datamultiproc.execution._policy import InlinePolicy
from tests.helpers import (
    AddStep,
    AnySample,
    AppendTo,
    ArraySample,
    Burn,
    FailOn,
    ListSample,
    Measure,
    NumberSample,
    SetupLog,
    SleepOn,
    number_samples,
    tile_samples,
)


@pytest.fixture
def parent_takes_part(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every sample after the first measured ones in the parent, whatever it costs."""

    def always(self: InlinePolicy) -> int:
        self.active = self.enabled and self.work is not None
        return 7 if self.active else 0

    monkeypatch.setattr(InlinePolicy, "chunk_size", always)
    monkeypatch.setattr(InlinePolicy, "start_first", lambda self, workers: None)  # workers first
    monkeypatch.setattr(InlinePolicy, "deadline", lambda self, size, started: float("inf"))


def _workers(result: Any) -> Counter[str]:
    return Counter(
        "parent" if record.worker == "parent" else "process" for record in result.records
    )


# -- the decision, from measurements (no processes) -----------------------------------------


def _measured(
    policy: InlinePolicy, *, pace: float, work: float, transfer: float | None = None
) -> None:
    policy.observe_results(10, work * 10)  # the first chunk starts the clock
    policy.first_result = policy.first_cpu = 0.0
    for _ in range(20):
        policy.observe_results(10, work * 10)
    policy.last_result = pace * policy.returned
    policy.last_cpu = (pace if transfer is None else transfer) * policy.returned


def test_policy_keeps_cpu_heavy_work_on_the_workers() -> None:
    policy = InlinePolicy()
    _measured(policy, pace=0.001, work=0.002)  # W2: 2 ms of CPU, two workers
    assert policy.chunk_size() == 0
    assert not policy.probing
    # Other programs slow the workers down: still no probe, the parent was idle.
    _measured(policy, pace=0.004, work=0.002, transfer=30e-6)
    assert policy.chunk_size() == 0


def test_policy_probes_cheap_samples_then_runs_them_in_the_parent() -> None:
    policy = InlinePolicy()
    assert policy.chunk_size() == 0  # nothing measured yet
    _measured(policy, pace=20e-6, work=5e-6)  # W1: moving costs more than processing
    probe = policy.chunk_size()
    assert probe > 0
    assert policy.probing
    policy.observe_inline(probe * 8e-6, probe)
    size = policy.chunk_size()
    assert size > probe
    assert policy.active
    policy.observe_inline(size * 100e-6, size)  # samples got expensive
    assert policy.chunk_size() == 0
    assert not policy.active


def test_policy_backs_off_after_a_lost_probe() -> None:
    policy = InlinePolicy()
    _measured(policy, pace=0.025, work=0.0001)  # samples that wait (I/O), not compute
    probe = policy.chunk_size()
    assert probe > 0
    assert policy.deadline(probe, 100.0) == pytest.approx(100.0 + probe * 0.025)
    policy.observe_inline(0.05, 1)  # one sample took longer than the workers' pace
    assert policy.chunk_size() == 0
    assert policy.retry_seconds == 2 * _policy._RETRY_SECONDS


def test_a_stalled_probe_costs_one_back_off_not_the_run() -> None:
    policy = InlinePolicy()
    _measured(policy, pace=20e-6, work=5e-6)
    assert policy.chunk_size() > 0
    policy.observe_inline(300e-6, 1)  # the parent was descheduled during the probe: lost
    assert policy.chunk_size() == 0
    assert policy.next_probe - time.monotonic() <= _policy._RETRY_SECONDS
    policy.next_probe = 0.0  # the back-off is over
    assert policy.chunk_size() > 0
    policy.observe_inline(5e-6, 1)  # a fresh measurement, not averaged with the stall
    assert policy.chunk_size() > 0
    assert policy.active


def test_a_long_lost_probe_keeps_the_parent_out_for_a_hundred_times_as_long() -> None:
    # Large arrays (W3): one probe stalls the parent for a whole sample, ~20 ms.
    policy = InlinePolicy()
    _measured(policy, pace=0.003, work=0.002, transfer=0.001)
    assert policy.chunk_size() > 0
    policy.probe_started -= 0.02
    policy.observe_inline(0.02, 1)
    quiet = policy.next_probe - time.monotonic()
    assert _policy._QUIET_FACTOR * 0.02 - 0.1 <= quiet <= _policy._QUIET_FACTOR * 0.02 + 0.1
    assert policy.chunk_size() == 0
    # What the next run of the pipeline keeps to.
    assert policy.quiet_until() == policy.next_probe
    later = InlinePolicy()
    later.keep_quiet(policy.quiet_until())
    _measured(later, pace=0.003, work=0.002, transfer=0.001)
    assert later.chunk_size() == 0
    later.keep_quiet(0.0)  # an earlier run that lost nothing changes nothing
    assert later.next_probe == policy.next_probe


def test_a_near_loss_is_retried_soon_and_not_remembered() -> None:
    # Noise, a moment of load: the parent 1.3 times the workers' pace (W1's probes).
    policy = InlinePolicy()
    _measured(policy, pace=20e-6, work=5e-6)
    assert policy.chunk_size() > 0
    policy.probe_started -= 0.002
    policy.observe_inline(26e-6, 1)
    assert policy.next_probe - time.monotonic() <= _policy._RETRY_SECONDS
    assert policy.quiet_until() == 0.0


def test_a_probe_counts_its_fastest_group_of_samples() -> None:
    from datamultiproc.execution._codec import encode_pipeline
    from datamultiproc.execution._inline import ParentRunner

    # The 11th sample (in the second group) stalls for 20 ms; the workers' pace is 200 µs.
    runner = ParentRunner(*encode_pipeline(SleepOn(ids=["s10"], seconds=0.02)))
    policy = InlinePolicy()
    _measured(policy, pace=200e-6, work=5e-6)
    probe = policy.chunk_size()
    assert policy.probing
    items = list(enumerate(number_samples(probe)))
    outcomes = runner.run_measured(items, policy)
    # Past the probe's deadline after the stalled sample: the rest go to the workers...
    assert [o.index for o in outcomes] == list(range(11))
    assert all(o.record.worker == "parent" for o in outcomes)
    # ...but the first group shows what a sample costs here: the parent takes over.
    assert policy.inline is not None
    assert policy.inline < 200e-6 / _policy._MARGIN
    assert policy.chunk_size() > 0
    assert policy.active
    runner.release(keep=False)


def test_policy_disabled() -> None:
    policy = InlinePolicy(enabled=False)
    _measured(policy, pace=20e-6, work=5e-6)
    assert policy.chunk_size() == 0


def test_copy_sample_shares_nothing_mutable() -> None:
    sample = ArraySample(id="a", data=1, array=np.arange(4))
    sample.processing_history.append(("Step", "x=1"))
    twin = copy_sample(sample)
    twin.array[0] = 99
    twin.processing_history.append(("Other", ""))
    assert sample.array[0] == 0
    assert sample.processing_history == [("Step", "x=1")]
    assert twin.array.tolist() == [99, 1, 2, 3]
    assert twin.id == "a"
    assert twin.data == 1
    nested = AnySample(id="n", payload={"list": [1, [2]], "array": np.ones(2)})
    copied = copy_sample(nested)
    copied.payload["list"][1].append(3)  # type: ignore[index]
    assert nested.payload == {"list": [1, [2]], "array": nested.payload["array"]}  # type: ignore[index]


# -- real runs: the parent's results and records match the workers' -------------------------


@pytest.mark.slow
@pytest.mark.usefixtures("parent_takes_part")
def test_parent_results_and_records_match_the_workers() -> None:
    pipeline = Compose(AddStep(), AddStep(step_size=2))
    inputs = number_samples(600)
    ours = run(pipeline, inputs, workers=2, progress=False)
    reference = run(pipeline, number_samples(600), backend="sequential", progress=False)
    counts = _workers(ours)
    assert counts["parent"] > 300
    assert counts["process"] > 0
    assert [s.model_dump() for s in ours] == [s.model_dump() for s in reference]
    for mine, theirs in zip(ours.records, reference.records, strict=True):
        assert [(r.stage, r.params, r.status) for r in mine.steps] == [
            (r.stage, r.params, r.status) for r in theirs.steps
        ]
    # The caller's samples never change, wherever they ran.
    assert [s.data for s in inputs] == list(range(600))
    assert all(s.processing_history == [] for s in inputs)


@pytest.mark.slow
@pytest.mark.usefixtures("parent_takes_part")
def test_parent_never_mutates_inputs_in_place() -> None:
    inputs = [ListSample(id=f"l{i}", values=[i]) for i in range(400)]
    result = run(AppendTo(value=-1), inputs, workers=2, progress=False)
    assert _workers(result)["parent"] > 0
    assert all(s.values == [i] for i, s in enumerate(inputs))
    assert all(s.values == [i, -1] for i, s in enumerate(result.samples))


@pytest.mark.slow
@pytest.mark.usefixtures("parent_takes_part")
def test_parent_leaves_immutable_and_mixed_inputs_unchanged() -> None:
    # Immutable-only samples (the shallow fast copy), with a history already.
    numbers = number_samples(400)
    for sample in numbers:
        sample.processing_history.append(("Load", "x=1"))
    result = run(AddStep(), numbers, workers=2, progress=False)
    assert _workers(result)["parent"] > 0
    assert [s.data for s in numbers] == list(range(400))
    assert all(s.processing_history == [("Load", "x=1")] for s in numbers)
    assert all(
        s.processing_history == [("Load", "x=1"), ("AddStep", "step_size=1")] for s in result
    )
    # Arrays changed in place and dicts replaced: the full copy.
    tiles = tile_samples(200)  # uint8 pixels: values stay under 256
    measured = run(Measure(scribble=True), tiles, workers=2, progress=False)
    assert _workers(measured)["parent"] > 0
    assert all(t.pixels.tolist() == [i, i + 1, i + 2, i + 3] for i, t in enumerate(tiles))
    assert all(t.features == {} for t in tiles)
    assert all(t.pixels.tolist() == [i + 1, i + 2, i + 3, i + 4] for i, t in enumerate(measured))


@pytest.mark.slow
@pytest.mark.usefixtures("parent_takes_part")
def test_parent_errors_are_collected_like_the_workers() -> None:
    bad = [f"s{i}" for i in range(350, 400)]
    with pytest.warns(Warning, match="50 of 400 samples failed"):
        result = run(Compose(AddStep(), FailOn(ids=bad)), number_samples(400), progress=False)
    assert sorted(f.sample_id for f in result.failures) == sorted(bad)
    assert {f.worker for f in result.failures} == {"parent"}
    failure = result.failures[0]
    assert failure.stage == "FailOn"
    assert failure.error_type == "ValueError"
    assert "ValueError" in failure.traceback


@pytest.mark.slow
@pytest.mark.usefixtures("parent_takes_part")
def test_one_plain_processor_in_the_parent_records_and_fails_like_the_workers() -> None:
    # A pipeline of one plain processor runs through the parent's written-out loop.
    bad = {f"s{i}" for i in range(0, 400, 7)}
    inputs = number_samples(400)
    with pytest.warns(Warning, match=f"{len(bad)} of 400 samples failed"):
        result = run(FailOn(ids=sorted(bad)), inputs, workers=2, progress=False)
    counts = _workers(result)
    assert counts["parent"] > 200
    assert counts["process"] > 0
    assert all(s.processing_history == [] for s in inputs)  # the inputs never change
    by_worker: dict[str, set[tuple[Any, ...]]] = {"parent": set(), "process": set()}
    for record in result.records:
        kind = "parent" if record.worker == "parent" else "process"
        steps = tuple(step._replace(seconds=0.0) for step in record.steps)
        by_worker[kind].add((record.status, steps))
    assert by_worker["parent"] == by_worker["process"]  # an ok and a failed shape, each
    assert len(by_worker["parent"]) == 2
    failures = {f.worker == "parent": f for f in result.failures}
    assert set(failures) == {True, False}
    ours, theirs = failures[True], failures[False]
    assert (
        (ours.stage, ours.error_type)
        == (theirs.stage, theirs.error_type)
        == ("FailOn", "ValueError")
    )
    assert ours.message.replace(ours.sample_id, "") == theirs.message.replace(theirs.sample_id, "")
    assert [s.processing_history for s in result] == [
        [("FailOn", FailOn(ids=sorted(bad)).describe_params())]
    ] * (400 - len(bad))


@pytest.mark.slow
@pytest.mark.usefixtures("parent_takes_part")
def test_parent_uses_its_own_set_up_copy_and_caches_like_a_worker(tmp_path: Path) -> None:
    log = tmp_path / "setup.log"
    setup = SetupLog(path=str(log))
    cache = Cache(processor=AddStep(), cache_dir=tmp_path / "cache")
    pipeline = Compose(setup, cache, Save(save_to_dir=tmp_path / "saved"))
    first = run(pipeline, number_samples(300), workers=2, progress=False)
    assert _workers(first)["parent"] > 0
    assert str(os.getpid()) in log.read_text().split()  # the parent set up its own copy
    assert setup._pid is None  # ...not the caller's processor
    assert cache.stats.misses == 300
    assert cache.stats.hits == 0
    assert len(list((tmp_path / "saved").rglob("*.pickle"))) == 300
    second = run(pipeline, number_samples(300), workers=2, progress=False)
    assert [s.data for s in second] == [s.data for s in first]
    assert cache.stats.hits == 300
    hits = [step.cache_hit for record in second.records for step in record.steps]
    assert hits.count(True) == 300


# -- real runs: the decision made from measurement --------------------------------------------


@pytest.mark.slow
def test_cpu_heavy_samples_never_run_in_the_parent() -> None:
    from datamultiproc.execution._pool import shutdown_pools

    shutdown_pools()
    # A long first run times its first sample in the parent: one over 1 ms is enough.
    first = run(Burn(seconds=0.002), number_samples(1200), workers=2, progress=False)
    assert _workers(first) == Counter({"process": 1199, "parent": 1})
    assert first.records[0].worker == "parent"
    # With workers alive, none.
    result = run(Burn(seconds=0.002), number_samples(300), workers=2, progress=False)
    assert _workers(result) == Counter({"process": 300})


@pytest.mark.slow
def test_tiny_samples_end_up_in_the_parent() -> None:
    # The decision comes from timings: on a machine busy with other work one run may
    # decide otherwise, so the parent must take over in one of three.
    shares = []
    for _ in range(3):
        result = run(AddStep(), number_samples(20_000), workers=2, progress=False)
        assert [s.data for s in result] == [i + 1 for i in range(20_000)]
        shares.append(_workers(result)["parent"])
        if shares[-1] > 10_000:
            break
    assert max(shares) > 10_000, shares


@pytest.mark.slow
def test_a_lost_probe_is_not_repeated_in_the_run_or_the_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from datamultiproc.execution._codec import encode_pipeline
    from datamultiproc.execution._pool import _ALL, shutdown_pools

    # Samples that wait 20 ms without computing: cheap for a worker's CPU, so the parent
    # probes a few once the three workers' pace is known, and loses by far (20 ms against
    # their 7). Before, it tried again 20 ms later, then 40...: two or three probes here.
    shutdown_pools()
    waits = SleepOn(ids=[f"s{i}" for i in range(120)], seconds=0.02)
    first = run(waits, number_samples(120), workers=3, progress=False)
    assert _probes(first) == 1
    (pool,) = _ALL
    key, _ = encode_pipeline(waits)
    assert pool.quiet[key] > time.monotonic()
    # The next run of the pipeline keeps quiet too (made longer here: a slow machine
    # must not reach the end of the quiet time during the run).
    pool.quiet[key] = time.monotonic() + 60
    rerun = run(waits, number_samples(120), workers=3, progress=False)
    assert _workers(rerun) == Counter({"process": 120})
    # A pipeline changed in a parameter is another pipeline: it may probe.
    other = SleepOn(ids=[f"s{i}" for i in range(120)], seconds=0.021)
    assert _probes(run(other, number_samples(120), workers=3, progress=False)) == 1
    shutdown_pools()


def _probes(result: Any) -> int:
    """How many times the parent took samples: runs of consecutive indices it ran."""
    indices = [r.index for r in result.records if r.worker == "parent"]
    return sum(1 for n, index in enumerate(indices) if n == 0 or indices[n - 1] != index - 1)


@pytest.mark.slow
def test_inline_can_be_switched_off_and_is_off_with_a_timeout() -> None:
    backend = MultiprocessBackend(2, inline=False)
    result = run(AddStep(), number_samples(5000), backend=backend, progress=False)
    assert _workers(result) == Counter({"process": 5000})
    timed = run(AddStep(), number_samples(5000), workers=2, timeout=10, progress=False)
    assert _workers(timed) == Counter({"process": 5000})


def test_parent_keeps_its_set_up_copy_only_after_a_clean_run(tmp_path: Path) -> None:
    from datamultiproc.execution._codec import encode_pipeline
    from datamultiproc.execution._inline import ParentRunner

    log = tmp_path / "setup.log"
    key, blob = encode_pipeline(Compose(SetupLog(path=str(log)), AddStep()))
    first = ParentRunner(key, blob)
    outcomes = first.run([(0, number_samples(1)[0])])
    assert isinstance(outcomes[0].sample, NumberSample)
    assert outcomes[0].sample.data == 1
    assert outcomes[0].record.worker == "parent"
    copy = first.pipeline
    first.release(keep=True)
    second = ParentRunner(key, blob)
    second.prepare()
    assert second.pipeline is copy  # set up once, reused
    assert ParentRunner(key, blob).run([(0, number_samples(1)[0])])  # in use: a new copy
    second.release(keep=False)  # interrupted: dropped
    third = ParentRunner(key, blob)
    third.prepare()
    assert third.pipeline is not copy
    assert len(log.read_text().split()) == 3
