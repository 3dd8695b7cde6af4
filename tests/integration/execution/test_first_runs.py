"""First runs (no worker alive, nothing recalled): workers start only if the parent's probe loses."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import multiprocess
import psutil
import pytest

from datamultiproc import Compose, run
from datamultiproc.exceptions import FailuresWarning
from datamultiproc.execution import MultiprocessBackend, imap
from datamultiproc.execution._pool import _IDLE, WorkerPool, shutdown_pools
from tests.helpers import (
    AddStep,
    AnySample,
    Burn,
    BurnFrom,
    FailOn,
    Holder,
    InterruptOn,
    NumberSample,
    SetupLog,
    number_samples,
)

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def cold() -> Iterator[None]:
    shutdown_pools()  # every test starts without workers, and leaves none
    yield
    shutdown_pools()


def _pool(start_method: str = "fork") -> WorkerPool:
    return _IDLE[(start_method, 2)]


def _places(result: Any) -> Counter[str]:
    return Counter(r.worker.split("-")[0] for r in result.records)


def _children() -> set[int]:
    return {child.pid for child in psutil.Process().children(recursive=True)}


@pytest.fixture
def no_new_process() -> Iterator[None]:
    """The test starts no process (earlier tests may have left helpers, e.g. a fork server)."""
    before = _children()
    yield
    assert not _children() - before
    assert not multiprocess.active_children()


def _in_one_of_three(attempt: Callable[[], bool]) -> None:
    """Timings decide a first run: on a busy machine one may start workers, not three."""
    for _ in range(3):
        shutdown_pools()
        if attempt():
            return
    pytest.fail("three first runs started workers")


@pytest.mark.usefixtures("no_new_process")
@pytest.mark.parametrize("start_method", ["fork", "spawn", "forkserver"])
def test_a_first_run_of_tiny_samples_starts_no_worker(start_method: str) -> None:
    def attempt() -> bool:
        samples = number_samples(3000)
        result = run(AddStep(), samples, workers=2, start_method=start_method, progress=False)
        assert [s.data for s in result] == [i + 1 for i in range(3000)]
        assert [r.index for r in result.records] == list(range(3000))
        assert all(r.status == "ok" and r.steps[0].stage == "AddStep" for r in result.records)
        assert [s.data for s in samples] == list(range(3000))  # the caller's samples unchanged
        if _pool(start_method).started:
            return False
        assert _places(result) == Counter({"parent": 3000})
        assert _pool(start_method).recalled  # the next run goes straight to the parent too
        return True

    _in_one_of_three(attempt)


def test_a_first_cpu_heavy_run_starts_both_workers_after_a_sample_or_two() -> None:
    result = run(Burn(seconds=0.002), number_samples(300), workers=2, progress=False)
    places = _places(result)
    assert places["parent"] <= 2  # the probe stops after its first sample past 1 ms
    assert places["process"] >= 298
    assert len({r.worker for r in result.records} - {"parent"}) == 2
    assert [r.index for r in result.records] == list(range(300))


def test_samples_getting_expensive_midway_start_the_workers() -> None:
    def attempt() -> bool:
        samples = number_samples(3000)
        pipeline = BurnFrom(start=2000)
        result = run(pipeline, samples, workers=2, start_method="fork", progress=False)
        assert [s.data for s in result] == [i + 1 for i in range(3000)]
        assert [r.index for r in result.records] == list(range(3000))
        early = Counter(r.worker for r in result.records[:1000])
        if early != Counter({"parent": 1000}):
            return False  # the first run's decision went to the workers
        late = Counter(r.worker.split("-")[0] for r in result.records[2000:])
        assert late["process"] > 900  # not won back by the parent
        assert _pool().started == 2
        return True

    _in_one_of_three(attempt)


def test_a_first_run_whose_first_sample_fails_runs_it_in_the_parent() -> None:
    with pytest.warns(FailuresWarning, match="1 of 1500"):
        result = run(
            FailOn(ids=["s0"]), number_samples(1500), workers=2, start_method="fork", progress=False
        )
    assert [f.sample_id for f in result.failures] == ["s0"]
    assert result.failures[0].worker == "parent"
    assert result.n_ok == 1499
    assert [r.index for r in result.records] == list(range(1500))
    # A failure's first traceback may take the probe's whole millisecond (linecache reads
    # the source): the workers may start then, and the parent takes over as before.
    assert _places(result)["parent"] > 1 or _pool().started == 2


@pytest.mark.usefixtures("no_new_process")
def test_imap_over_a_generator_starts_no_worker_and_reads_lazily() -> None:
    def attempt() -> bool:
        read = []

        def numbers() -> Iterator[Any]:
            for sample in number_samples(5000):
                read.append(sample.id)
                yield sample

        iterator = imap(AddStep(), numbers(), workers=2, start_method="fork", progress=False)
        first = next(iterator)
        assert first.data == 1
        assert len(read) < 5000  # not everything read for the first result
        rest = list(iterator)
        assert [s.data for s in [first, *rest]] == [i + 1 for i in range(5000)]
        return _pool().started == 0

    _in_one_of_three(attempt)


@pytest.mark.parametrize(
    "backend",
    [{"backend": MultiprocessBackend(2, "fork", inline=False)}, {"workers": 2, "timeout": 10}],
    ids=["inline=False", "timeout"],
)
def test_first_runs_without_inline_or_with_a_timeout_start_the_workers(
    backend: dict[str, Any],
) -> None:
    result = run(AddStep(), number_samples(500), progress=False, **backend)
    assert "parent" not in _places(result)
    assert [s.data for s in result] == [i + 1 for i in range(500)]
    assert len({r.worker for r in result.records}) >= 1


def test_a_pipeline_with_its_own_setup_starts_the_workers_at_once(tmp_path: Any) -> None:
    log = tmp_path / "setup.log"
    pipeline = Compose(SetupLog(path=str(log)), AddStep())
    result = run(pipeline, number_samples(200), workers=2, start_method="fork", progress=False)
    assert _pool().started == 2
    assert [s.data for s in result] == [i + 1 for i in range(200)]
    assert result.records[0].worker.startswith("process-")  # not set up in the parent first


def test_unpicklable_samples_of_a_first_run_still_fail_in_the_workers_path() -> None:
    samples = [AnySample(id="locked", payload=threading.Lock())]
    samples += [AnySample(id=f"a{i}", payload=i) for i in range(10)]
    with pytest.warns(FailuresWarning):
        result = run(Holder(), samples, workers=2, progress=False)
    (failure,) = result.failures
    assert failure.error_type == "NotPicklableError"
    assert result.n_ok == 10


def test_the_backend_switched_between_first_runs() -> None:
    workers = run(
        AddStep(),
        number_samples(1500),
        backend=MultiprocessBackend(2, "fork", inline=False),
        progress=False,
    )
    assert "parent" not in _places(workers)
    # Warm workers alive: the run measures them first, as before.
    warm = run(
        AddStep(step_size=2), number_samples(1500), workers=2, start_method="fork", progress=False
    )
    assert [s.data for s in warm] == [i + 2 for i in range(1500)]
    sequential = run(AddStep(), number_samples(1500), backend="sequential", progress=False)

    def attempt() -> bool:
        first = run(AddStep(), number_samples(1500), workers=2, start_method="fork", progress=False)
        assert [s.data for s in first] == [s.data for s in sequential]
        return _places(first) == Counter({"parent": 1500})

    _in_one_of_three(attempt)


@pytest.mark.usefixtures("no_new_process")
def test_ctrl_c_during_a_first_runs_probe_stops_the_run_and_the_next_one_works(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started: list[int] = []
    start = WorkerPool._start

    def counted(self: WorkerPool, slot: int) -> Any:
        started.append(slot)
        return start(self, slot)

    monkeypatch.setattr(WorkerPool, "_start", counted)
    samples = number_samples(1500)
    with pytest.raises(KeyboardInterrupt):
        run(InterruptOn(ids=["s0"]), samples, workers=2, start_method="fork", progress=False)
    assert started == []  # a first run's first sample runs in the parent
    again = run(AddStep(), samples, workers=2, start_method="fork", progress=False)
    assert again.status == "complete"
    assert [s.data for s in again] == [i + 1 for i in range(1500)]
    assert [s.data for s in samples] == list(range(1500))


@pytest.mark.parametrize(
    "options",
    [
        {"backend": MultiprocessBackend(2, "fork", inline=False)},
        {"workers": 2, "start_method": "fork"},
        {"workers": 2, "start_method": "fork", "timeout": 5},
    ],
    ids=["inline=False", "inline", "timeout"],
)
def test_an_empty_input_completes_without_starting_workers(options: dict[str, Any]) -> None:
    nothing: list[NumberSample] = []
    result = run(AddStep(), nothing, progress=False, **options)
    assert result.status == "complete"
    assert result.samples == []
    assert _pool().started == 0


def test_a_probe_that_took_the_whole_input_starts_no_worker() -> None:
    one = iter(number_samples(1))  # of unknown length: a first run tries the parent
    result = run(Burn(seconds=0.002), one, workers=2, start_method="fork", progress=False)
    assert _places(result) == Counter({"parent": 1})  # lost, but nothing is left to send
    assert _pool().started == 0


def test_a_short_first_run_starts_its_workers_before_running_a_sample() -> None:
    # Trying a pipeline out on a few samples: a sample that takes its process down
    # must take a worker, not the caller (a notebook's kernel).
    result = run(AddStep(), number_samples(999), workers=2, start_method="fork", progress=False)
    assert [s.data for s in result] == [i + 1 for i in range(999)]
    assert _pool().started == 2
    assert result.records[0].worker != "parent"
