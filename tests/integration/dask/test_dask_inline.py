"""The Dask client takes part: tiny samples run in the calling process, with the workers' semantics."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from datamultiproc import Cache, Compose, Save
from datamultiproc.exceptions import FailuresWarning
from datamultiproc.execution import DaskBackend, RunIterator, SampleFinished
from datamultiproc.execution._policy import InlinePolicy
from tests.helpers import AddStep, Burn, BurnFrom, FailOn, NumberSample, number_samples
from tests.integration.dask.cells import notebook_script
from tests.integration.dask.test_dask_backend import _run_script

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

TINY = 20_000  # W1's size: enough samples for the client's probe to come and win


@pytest.fixture
def client_takes_part(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every sample after the first measured chunk in the client, whatever it costs.

    Tests using it fix ``chunksize``: every chunk is then measured, the first one too.
    """

    def always(self: InlinePolicy) -> int:
        self.active = self.enabled and self.work is not None
        return 7 if self.active else 0

    monkeypatch.setattr(InlinePolicy, "chunk_size", always)
    monkeypatch.setattr(InlinePolicy, "deadline", lambda self, size, started: float("inf"))


def _where(result: Any) -> Counter[str]:
    return Counter("parent" if r.worker == "parent" else "dask" for r in result.records)


def _steps(result: Any) -> list[Any]:
    return [
        (r.index, r.sample_id, r.status, [(s.step, s.stage, s.params, s.status) for s in r.steps])
        for r in result.records
    ]


def test_tiny_samples_run_in_the_client_with_the_workers_results(dask_client: Any) -> None:
    pipeline = Compose(AddStep(), FailOn(ids=["s3", "s19000"]), AddStep(step_size=3))
    with pytest.warns(FailuresWarning, match=f"2 of {TINY}"):
        in_order = pipeline.run(number_samples(TINY), backend="sequential", progress=False)
    # Whether the client wins its probe is decided from timings: on a busy machine (a
    # cluster just started, the rest of the suite) one run may decide otherwise, so the
    # client must take part in one of three; the results must be right in every one.
    shares = []
    for _ in range(3):
        with pytest.warns(FailuresWarning, match=f"2 of {TINY}"):
            on_dask = pipeline.run(number_samples(TINY), backend=dask_client, progress=False)
        assert [s.model_dump() for s in on_dask] == [s.model_dump() for s in in_order]
        assert _steps(on_dask) == _steps(in_order)
        assert [(f.sample_id, f.stage, f.error_type, f.message) for f in on_dask.failures] == [
            (f.sample_id, f.stage, f.error_type, f.message) for f in in_order.failures
        ]
        where = _where(on_dask)
        shares.append(where)
        if where["parent"] > TINY // 4:
            break
    assert shares[0]["dask"] > 0, shares  # the workers' first chunks measured their pace
    assert max(where["parent"] for where in shares) > TINY // 4, shares  # the client won
    assert pipeline.steps[0] == AddStep()  # the client ran a private copy


def test_the_next_run_of_a_pipeline_probes_the_client_first(dask_client: Any) -> None:
    # Whether the client wins a first run is timed: on a busy machine it must in one of
    # three (each a pipeline not run before here); after a run it won, the next run of
    # that pipeline starts in the client.
    outcomes = []
    for attempt in range(3):
        step = 5 + 10 * attempt
        pipeline = Compose(AddStep(step_size=step), AddStep(step_size=6))
        first = pipeline.run(number_samples(TINY), backend=dask_client, progress=False)
        assert first.records[0].worker != "parent"  # a first run: the workers come first
        again = pipeline.run(number_samples(TINY), backend=dask_client, progress=False)
        assert [s.data for s in again] == [i + step + 6 for i in range(TINY)]
        outcomes.append((_where(first)["parent"], again.records[0].worker))
        if outcomes[-1][0] > 0 and outcomes[-1][1] == "parent":
            break
    # The client took part in the first run, and the next one started with its probe.
    assert any(taken > 0 and starts == "parent" for taken, starts in outcomes), outcomes
    other = Compose(AddStep(step_size=5), AddStep(step_size=7))  # another pipeline
    assert (
        other.run(number_samples(TINY), backend=dask_client, progress=False).records[0].worker
        != "parent"
    )


def test_cpu_heavy_samples_never_run_in_the_client(dask_client: Any) -> None:
    # W2's samples: 2 ms of CPU each, which two workers share.
    result = Burn(seconds=0.002).run(number_samples(400), backend=dask_client, progress=False)
    assert result.n_ok == 400
    assert _where(result) == Counter(dask=400)


def test_samples_that_get_expensive_go_back_to_the_workers(dask_client: Any) -> None:
    start = TINY
    shares = []
    for attempt in range(3):  # the client's share is timed: it must win in one of three
        pipeline = BurnFrom(start=start, seconds=0.002 + attempt * 1e-6)  # a new pipeline
        result = pipeline.run(number_samples(start + 600), backend=dask_client, progress=False)
        assert [s.data for s in result] == [i + 1 for i in range(start + 600)]
        cheap = Counter(r.worker == "parent" for r in result.records[:start])
        costly = Counter(r.worker == "parent" for r in result.records[start:])
        # An inline chunk stops at twice its expected time: a few costly samples run there.
        assert costly[False] > 500, costly
        shares.append(cheap[True])
        if cheap[True] > start // 4:
            break
    assert max(shares) > start // 4, shares


@pytest.mark.usefixtures("client_takes_part")
def test_inline_false_keeps_every_sample_on_the_cluster(dask_client: Any) -> None:
    # Control: the fixture makes the client take every sample it may.
    taken = AddStep().run(number_samples(3000), backend=dask_client, chunksize=50, progress=False)
    assert _where(taken)["parent"] > 0
    backend = DaskBackend(dask_client, inline=False)
    result = AddStep().run(number_samples(3000), backend=backend, chunksize=50, progress=False)
    assert [s.data for s in result] == [i + 1 for i in range(3000)]
    assert _where(result) == Counter(dask=3000)


@pytest.mark.usefixtures("client_takes_part")
def test_pipelines_with_storage_steps_never_run_in_the_client(
    dask_client: Any, tmp_path: Path
) -> None:
    cached = Compose(Cache(processor=AddStep(), cache_dir=tmp_path / "cache"), AddStep())
    result = cached.run(number_samples(1500), backend=dask_client, chunksize=50, progress=False)
    assert [s.data for s in result] == [i + 2 for i in range(1500)]
    assert _where(result) == Counter(dask=1500)
    saved = Compose(AddStep(), Save(save_to_dir=tmp_path / "saved"))
    result = saved.run(number_samples(1500), backend=dask_client, chunksize=50, progress=False)
    assert result.n_ok == 1500
    assert _where(result) == Counter(dask=1500)


class _Finished:
    """A progress sink that keeps where each finished sample ran."""

    def __init__(self) -> None:
        self.workers: list[str] = []

    def handle(self, event: Any) -> None:
        if isinstance(event, SampleFinished):
            self.workers.append(event.record.worker)


def test_an_interrupt_in_the_client_leaves_the_cluster_usable(dask_client: Any) -> None:
    sink = _Finished()
    many = 5_000_000  # read lazily: Ctrl-C comes long before the end, on any machine
    samples = (NumberSample(id=f"s{i}", data=i) for i in range(many))
    timer = threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            AddStep().run(samples, backend=dask_client, progress=sink)
    finally:
        timer.cancel()
    assert "parent" in sink.workers  # it was the client's turn when Ctrl-C came
    assert len(sink.workers) < many
    deadline = time.monotonic() + 10
    while any(dask_client.processing().values()):
        assert time.monotonic() < deadline, dask_client.processing()
        time.sleep(0.05)
    # The interrupted run left no figures: the workers' first chunks come first again.
    assert (
        AddStep().run(number_samples(50), backend=dask_client, progress=False).records[0].worker
        != "parent"
    )
    pipeline = Compose(AddStep(), FailOn(ids=["s5", "s15000"]), AddStep(step_size=3))
    with pytest.warns(FailuresWarning, match=f"2 of {TINY}"):
        again = pipeline.run(number_samples(TINY), backend=dask_client, progress=False)
    with pytest.warns(FailuresWarning, match=f"2 of {TINY}"):
        in_order = pipeline.run(number_samples(TINY), backend="sequential", progress=False)
    assert _where(again)["parent"] > 0
    assert [s.model_dump() for s in again] == [s.model_dump() for s in in_order]
    assert _steps(again) == _steps(in_order)


def test_a_stop_in_the_client_leaves_the_next_run_correct(dask_client: Any) -> None:
    it = AddStep().imap(number_samples(TINY), backend=dask_client, progress=False)
    assert isinstance(it, RunIterator)
    seen = [next(it).data for _ in range(10_000)]  # well into the client's share
    it.close()
    assert seen == [i + 1 for i in range(10_000)]
    result = AddStep(step_size=2).run(number_samples(TINY), backend=dask_client, progress=False)
    assert [s.data for s in result] == [i + 2 for i in range(TINY)]
    assert _where(result)["parent"] > 0


# Classes defined in __main__ with no file behind it, as in a notebook cell.
NOTEBOOK_SCRIPT = notebook_script(
    20_000,
    """{
        "status": result.status,
        "right": [s.data for s in result] == [(i * 2 + 10) * 3 + 10 for i in range(20_000)],
        "same_class": all(type(s) is CellSample for s in result),
        "workers": sorted({"parent" if r.worker == "parent" else "dask" for r in result.records}),
    }""",
)


def test_notebook_defined_classes_run_in_the_client_too() -> None:
    out = _run_script(NOTEBOOK_SCRIPT)
    assert out == {
        "status": "complete",
        "right": True,
        "same_class": True,
        "workers": ["dask", "parent"],
    }
