"""The process backend with real worker processes, under every start method."""

from __future__ import annotations

import concurrent.futures as cf
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from datamultiproc import Cache, Compose, NotPicklableError, ProcessingError, WorkerLostError
from datamultiproc.exceptions import FailuresWarning
from datamultiproc.execution import MultiprocessBackend, RunIterator
from datamultiproc.execution._runner import RemoteTraceback
from tests.helpers import (
    AddStep,
    AnySample,
    FailOn,
    Holder,
    KillOn,
    NumberSample,
    SetupLog,
    SleepOn,
    number_samples,
)

pytestmark = pytest.mark.slow
METHODS = ["fork", "spawn", "forkserver"]


@pytest.mark.parametrize("start_method", METHODS)
def test_results_in_order_with_worker_records(start_method: str) -> None:
    backend = MultiprocessBackend(2, start_method, inline=False)  # every sample in a worker
    result = Compose(AddStep(), AddStep(step_size=2)).run(
        number_samples(300), backend=backend, progress=False
    )
    assert [s.data for s in result] == [i + 3 for i in range(300)]
    assert result.status == "complete"
    assert result.backend == "process"
    assert result.workers == 2
    workers = {record.worker for record in result.records}
    assert all(name.startswith("process-") for name in workers)
    assert len(workers) == 2
    assert result.samples[7].processing_history == [
        ("AddStep", "step_size=1"),
        ("AddStep", "step_size=2"),
    ]


@pytest.mark.parametrize("start_method", METHODS)
def test_setup_runs_once_per_worker(start_method: str, tmp_path: Path) -> None:
    log = tmp_path / "setup.log"
    pipeline = Compose(SetupLog(path=str(log)), AddStep())
    result = pipeline.run(
        number_samples(200), workers=2, start_method=start_method, chunksize=3, progress=False
    )
    assert result.n_ok == 200
    pids = log.read_text().split()
    # The parent sets up its own copy too if it took part (cheap samples).
    assert len(pids) == len(set(pids)) <= 2 + (str(os.getpid()) in pids)
    assert cast(Any, pipeline.steps[0])._pid is None  # private state stays in the workers


@pytest.mark.parametrize(
    ("how", "start_method"),
    [
        ("sigkill", "fork"),
        ("sigkill", "spawn"),
        ("sigkill", "forkserver"),
        ("exit", "fork"),
        ("segfault", "fork"),
    ],
)
def test_dead_worker_fails_one_sample_and_the_rest_complete(how: str, start_method: str) -> None:
    pipeline = Compose(AddStep(), KillOn(ids=["s13"], how=how))
    # Code that may take its process down stays out of the parent (a first run's
    # probe would run s13 there).
    backend = MultiprocessBackend(2, start_method, inline=False)
    started = time.perf_counter()
    with pytest.warns(FailuresWarning, match="1 of 60"):
        result = pipeline.run(number_samples(60), backend=backend, chunksize=8, progress=False)
    assert time.perf_counter() - started < 10
    assert [s.id for s in result] == [f"s{i}" for i in range(60) if i != 13]  # chunk-mates retried
    (failure,) = result.failures
    assert failure.sample_id == "s13"
    assert failure.error_type == "WorkerLostError"
    expected = {"sigkill": "signal SIGKILL", "exit": "exit code 3", "segfault": "signal SIGSEGV"}[
        how
    ]
    assert failure.message == f"worker died ({expected})"


def test_a_sample_over_the_timeout_fails_and_its_worker_is_replaced() -> None:
    pipeline = Compose(SleepOn(ids=["s2"], seconds=30), AddStep())
    started = time.perf_counter()
    with pytest.warns(FailuresWarning):
        result = pipeline.run(number_samples(30), workers=2, timeout=0.5, progress=False)
    assert time.perf_counter() - started < 10
    assert result.n_ok == 29
    assert result.failures[0].error_type == "TimeoutError"
    assert "timeout=0.5" in result.failures[0].message


def test_raise_carries_the_worker_traceback() -> None:
    with pytest.raises(ProcessingError, match="'s4' failed in FailOn") as info:
        FailOn(ids=["s4"]).run(number_samples(40), workers=2, on_error="raise", progress=False)
    assert isinstance(info.value.__cause__, RemoteTraceback)
    assert "ValueError: bad sample s4" in str(info.value.__cause__)


def test_raise_on_a_dead_worker_raises_worker_lost() -> None:
    with pytest.raises(WorkerLostError, match="SIGKILL"):
        KillOn(ids=["s1"]).run(
            number_samples(5),
            backend=MultiprocessBackend(2, inline=False),
            on_error="raise",
            progress=False,
        )


def test_unpicklable_sample_fails_alone_naming_field_and_type() -> None:
    samples = [AnySample(id=f"a{i}", payload=i) for i in range(10)]
    samples[3] = AnySample(id="locked", payload=threading.Lock())
    with pytest.warns(FailuresWarning):
        result = Holder().run(samples, workers=2, progress=False)
    assert result.n_ok == 9
    (failure,) = result.failures
    assert failure.error_type == "NotPicklableError"
    assert failure.sample_id == "locked"
    assert "field 'payload' holds a _thread.lock" in failure.message
    with pytest.raises(NotPicklableError, match="'locked'"):
        Holder().run(samples, workers=2, progress=False, on_error="raise")


def test_unpicklable_processor_raises_before_any_work() -> None:
    with pytest.raises(NotPicklableError, match="'thing'"):
        Holder(thing=threading.Lock()).run(number_samples(3), workers=2, progress=False)


def test_warm_pool_reuses_workers_between_runs() -> None:
    backend = MultiprocessBackend(2, inline=False)  # every sample in a worker
    first = AddStep().run(number_samples(50), backend=backend, progress=False)
    second = AddStep().run(number_samples(50), backend=backend, progress=False)
    processes = [{r.worker for r in run.records} for run in (first, second)]
    assert processes[1] == processes[0]
    assert len(processes[1]) == 2
    # Cheap samples may run in the parent ("parent"); no new worker process may appear.
    third = AddStep().run(
        number_samples(50), workers=2, start_method=backend.start_method, progress=False
    )
    assert set() < {r.worker for r in third.records} - {"parent"} <= processes[0]


def test_rerun_hits_the_cache(tmp_path: Path) -> None:
    pipeline = Compose(Cache(processor=AddStep(), cache_dir=tmp_path), AddStep(step_size=10))
    first = pipeline.run(number_samples(40), workers=2, progress=False)
    second = pipeline.run(number_samples(40), workers=2, progress=False)
    assert [s.data for s in second] == [s.data for s in first] == [i + 11 for i in range(40)]
    assert all(r.steps[0].cache_hit is False for r in first.records)
    assert all(r.steps[0].cache_hit is True for r in second.records)
    cache = pipeline.steps[0]
    assert isinstance(cache, Cache)
    stats = cache.stats  # counted in the workers, folded into the parent's Cache
    assert (stats.hits, stats.misses) == (40, 40)


def test_imap_stops_reading_input_while_the_consumer_pauses() -> None:
    read = 0

    def samples() -> Iterator[NumberSample]:
        nonlocal read
        for index in range(1_000_000):
            read += 1
            yield NumberSample(id=f"s{index}", data=index)

    stream = AddStep().imap(samples(), workers=2, progress=False)
    assert isinstance(stream, RunIterator)
    assert next(stream).data == 1
    time.sleep(0.3)
    paused_at = read
    time.sleep(0.5)
    assert read == paused_at < 50_000
    assert [next(stream).data for _ in range(5)] == [2, 3, 4, 5, 6]
    stream.close()


def test_process_pool_executor_backend() -> None:
    with cf.ProcessPoolExecutor(2) as executor:
        result = AddStep().run(number_samples(20), backend=executor, progress=False)
    assert [s.data for s in result] == list(range(1, 21))
    assert result.records[0].worker.startswith("process-")


def test_a_custom_sink_stops_worker_processes_through_run_started() -> None:
    import psutil

    from datamultiproc.execution import RunStarted, SampleFinished

    class StopAfter:
        def __init__(self) -> None:
            self.finished = 0

        def handle(self, event: object) -> None:
            if isinstance(event, RunStarted):
                self.stop = event.stop
            elif isinstance(event, SampleFinished):
                self.finished += 1
                if self.finished == 20:
                    self.stop()

    pipeline = Compose(SleepOn(ids=[f"s{i}" for i in range(500)], seconds=0.01), AddStep())
    result = pipeline.run(number_samples(500), workers=2, chunksize=1, progress=StopAfter())
    assert result.status == "interrupted"
    assert 20 <= result.n_ok < 500
    workers = {record.worker for record in result.records} - {"parent"}  # a first run's probe
    for pid in {int(worker.split("-")[1]) for worker in workers}:
        assert not psutil.pid_exists(pid)  # the workers were shut down and reaped


def test_thread_backend() -> None:
    result = AddStep().run(number_samples(20), backend="thread", workers=2, progress=False)
    assert [s.data for s in result] == list(range(1, 21))


def test_stop_button_returns_finished_samples_and_shuts_workers_down(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import psutil

    from datamultiproc.execution import SampleFinished
    from datamultiproc.notebook import _progress

    class StopAfter:
        def __init__(self, stop: threading.Event) -> None:
            self.stop, self.finished = stop, 0

        def handle(self, event: object) -> None:
            self.finished += isinstance(event, SampleFinished)
            if self.finished == 20:
                self.stop.set()  # what the widget's Stop button does

    def factory(mode: str = "auto", *, stop: threading.Event | None = None) -> StopAfter:
        assert stop is not None
        return StopAfter(stop)

    monkeypatch.setattr(_progress, "create_progress_sink", factory)
    pipeline = Compose(SleepOn(ids=[f"s{i}" for i in range(500)], seconds=0.01), AddStep())
    started = time.perf_counter()
    result = pipeline.run(number_samples(500), workers=2, chunksize=1, progress="text")
    assert time.perf_counter() - started < 5
    assert result.status == "interrupted"
    assert 20 <= result.n_ok < 500
    assert [s.data for s in result] == [int(s.id[1:]) + 1 for s in result]
    workers = {record.worker for record in result.records} - {"parent"}  # a first run's probe
    for pid in {int(worker.split("-")[1]) for worker in workers}:
        assert not psutil.pid_exists(pid)  # the workers were shut down and reaped
