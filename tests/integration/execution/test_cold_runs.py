"""Cold runs: workers a run started leave when the parent takes over, and nothing outlives a run."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import multiprocess
import psutil
import pytest

from datamultiproc import run
from datamultiproc.execution import MultiprocessBackend, _pool
from datamultiproc.execution._codec import encode_pipeline
from datamultiproc.execution._policy import InlineFigures, InlinePolicy
from datamultiproc.execution._pool import _IDLE, WorkerPool, shutdown_pools
from tests.helpers import AddStep, Burn, DoubleStep, number_samples

# -- recalled figures: the decision (no processes) --------------------------------------------


def test_a_recalled_policy_probes_the_parent_before_any_worker() -> None:
    policy = InlinePolicy()
    assert policy.needs_workers
    policy.recall(InlineFigures(pace=50e-6, work=10e-6, transfer=20e-6))
    assert not policy.needs_workers
    assert policy.chunk_size() > 0
    assert policy.probing
    policy.observe_inline(5e-6, 1)  # the parent beats the recalled pace
    assert policy.active
    assert not policy.needs_workers
    assert policy.chunk_size() > 0
    assert policy.figures() == InlineFigures(pace=50e-6, work=10e-6, transfer=20e-6)


def test_a_recalled_policy_whose_probe_loses_needs_the_workers_and_forgets() -> None:
    policy = InlinePolicy()
    policy.recall(InlineFigures(pace=50e-6, work=10e-6, transfer=20e-6))
    assert policy.chunk_size() > 0
    policy.observe_inline(2e-3, 1)  # samples got expensive since: 2 ms each
    assert policy.needs_workers
    assert policy.pace is None
    assert policy.work is None
    assert policy.chunk_size() == 0
    assert policy.figures() is None


def test_samples_getting_expensive_send_a_recalled_run_to_the_workers() -> None:
    policy = InlinePolicy()
    policy.recall(InlineFigures(pace=50e-6, work=10e-6, transfer=20e-6))
    policy.chunk_size()
    policy.observe_inline(5e-6, 1)
    policy.observe_inline(1e-3, 1)
    policy.observe_inline(1e-3, 1)
    assert policy.chunk_size() == 0
    assert policy.needs_workers


def test_a_disabled_policy_recalls_nothing() -> None:
    policy = InlinePolicy(enabled=False)
    policy.recall(InlineFigures(pace=50e-6, work=10e-6, transfer=20e-6))
    assert policy.needs_workers
    assert policy.chunk_size() == 0


# -- real runs ------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def cold() -> Iterator[None]:
    shutdown_pools()  # every test starts without workers, and leaves none
    yield
    shutdown_pools()


def _parent_takes_over(monkeypatch: pytest.MonkeyPatch) -> None:
    """The parent takes every sample once the workers sent back their first chunk.

    No first-run probe: the workers start at once, as when samples are expensive.
    """

    def always(self: InlinePolicy) -> int:
        self.active = self.enabled and self.work is not None
        return 7 if self.active else 0

    monkeypatch.setattr(InlinePolicy, "chunk_size", always)
    monkeypatch.setattr(InlinePolicy, "start_first", lambda self, workers: None)
    monkeypatch.setattr(InlinePolicy, "deadline", lambda self, size, started: float("inf"))


@pytest.fixture
def parent_takes_over(monkeypatch: pytest.MonkeyPatch) -> None:
    _parent_takes_over(monkeypatch)


def _worker_pids(result: Any) -> set[int]:
    return {int(r.worker.split("-")[1]) for r in result.records if r.worker.startswith("process-")}


def _gone(pid: int) -> bool:
    # Reaped, not a zombie waiting for its parent.
    return not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def _warm_pool(size: int = 2) -> WorkerPool:
    return _IDLE[("fork", size)]


def _start_workers(size: int = 2) -> WorkerPool:
    """Warm the pool: a run on the workers only (a first run of tiny samples starts none)."""
    backend = MultiprocessBackend(size, "fork", inline=False)
    run(DoubleStep(), number_samples(4), backend=backend, progress=False)
    return _warm_pool(size)


@pytest.mark.slow
@pytest.mark.usefixtures("parent_takes_over")
def test_workers_a_run_started_are_gone_once_the_parent_took_over() -> None:
    samples = number_samples(3000)
    result = run(AddStep(), samples, workers=2, start_method="fork", progress=False)
    # No sample lost or run twice, the workers' chunks included.
    assert [s.data for s in result] == [i + 1 for i in range(3000)]
    assert [r.index for r in result.records] == list(range(3000))
    assert [s.data for s in samples] == list(range(3000))  # the caller's samples unchanged
    pids = _worker_pids(result)
    assert pids  # the workers ran the first chunks
    assert Counter(r.worker for r in result.records)["parent"] > 2000
    # Gone (and reaped) by the time run() returns, not at the next run or at exit.
    assert all(_gone(pid) for pid in pids)
    assert not _warm_pool().live()
    assert not multiprocess.active_children()


@pytest.mark.slow
def test_warm_workers_stay_when_the_parent_takes_over(monkeypatch: pytest.MonkeyPatch) -> None:
    warm = {w.process.pid for w in _start_workers().live()}
    assert len(warm) == 2
    _parent_takes_over(monkeypatch)
    result = run(AddStep(), number_samples(3000), workers=2, start_method="fork", progress=False)
    assert Counter(r.worker for r in result.records)["parent"] > 2000
    assert {w.process.pid for w in _warm_pool().live()} == warm


@pytest.mark.slow
def test_a_cpu_heavy_cold_run_uses_the_workers_and_keeps_them() -> None:
    result = run(Burn(seconds=0.002), number_samples(300), workers=2, progress=False)
    places = Counter(r.worker.split("-")[0] for r in result.records)
    assert places["process"] >= 298  # the parent's first-run probe: a sample or two
    assert len(_worker_pids(result)) == 2
    assert len(_IDLE[(multiprocess.get_start_method(), 2)].live()) == 2


def _recalling(pace: float) -> WorkerPool:
    """The warm (empty) pool, told that the parent took the last run of AddStep() over."""
    from datamultiproc.execution._codestate import code_state

    pool = WorkerPool("fork", 2)
    pool.code = code_state()  # started from the code loaded now: no reason to replace it
    key, _ = encode_pipeline(AddStep())
    pool.remember(key, InlineFigures(pace=pace, work=1e-6, transfer=1e-5))
    _IDLE[("fork", 2)] = pool
    _pool._ALL.add(pool)
    return pool


@pytest.mark.slow
def test_a_rerun_after_the_parent_took_over_starts_no_worker() -> None:
    pool = _recalling(pace=1.0)  # the parent's probe wins against a second per sample
    result = run(AddStep(), number_samples(2000), workers=2, start_method="fork", progress=False)
    assert [s.data for s in result] == [i + 1 for i in range(2000)]
    assert Counter(r.worker for r in result.records) == Counter({"parent": 2000})
    assert pool.started == 0
    assert pool.recalled  # and the next run does the same


@pytest.mark.slow
def test_a_rerun_whose_probe_loses_goes_to_the_workers() -> None:
    pool = _recalling(pace=1e-12)  # no parent beats that: workers start after the probe
    result = run(AddStep(), number_samples(2000), workers=2, start_method="fork", progress=False)
    assert [s.data for s in result] == [i + 1 for i in range(2000)]
    assert [r.index for r in result.records] == list(range(2000))
    assert pool.started == 2
    assert _worker_pids(result)


@pytest.mark.slow
def test_warm_workers_get_no_sample_while_a_recalled_run_stays_in_the_parent() -> None:
    warm = _start_workers()
    pids = {w.process.pid for w in warm.live()}
    assert len(pids) == 2
    key, _ = encode_pipeline(AddStep())
    warm.remember(key, InlineFigures(pace=1.0, work=1e-6, transfer=1e-5))  # the parent won
    result = run(AddStep(), number_samples(2000), workers=2, start_method="fork", progress=False)
    assert [s.data for s in result] == [i + 1 for i in range(2000)]
    assert Counter(r.worker for r in result.records) == Counter({"parent": 2000})
    assert {w.process.pid for w in warm.live()} == pids  # still warm, not retired
    assert warm.recalled  # and the next run does the same
    # A probe that loses sends the samples to those same warm workers.
    warm.remember(key, InlineFigures(pace=1e-12, work=1e-6, transfer=1e-5))
    lost = run(AddStep(), number_samples(2000), workers=2, start_method="fork", progress=False)
    assert [r.index for r in lost.records] == list(range(2000))
    assert _worker_pids(lost) <= pids
    assert _worker_pids(lost)


@pytest.mark.slow
def test_recall_is_ignored_with_a_timeout_or_without_inline() -> None:
    pool = _recalling(pace=1.0)
    backend = MultiprocessBackend(2, "fork", inline=False)
    result = run(AddStep(), number_samples(500), backend=backend, progress=False)
    assert "parent" not in {r.worker for r in result.records}
    assert pool.started == 2
    assert not pool.recalled  # the run ended on the workers: nothing to recall
    pool = _recalling(pace=1.0)
    timed = run(AddStep(), number_samples(500), workers=2, timeout=10, progress=False)
    assert "parent" not in {r.worker for r in timed.records}


@pytest.mark.slow
def test_ctrl_c_while_the_workers_start_leaves_none_behind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started = _pool.WorkerPool._start

    def interrupted(self: WorkerPool, slot: int) -> Any:
        worker = started(self, slot)
        os.kill(os.getpid(), signal.SIGINT)  # lands right after this worker started
        time.sleep(0.05)  # and is handled while _start has not returned yet
        return worker

    monkeypatch.setattr(_pool.WorkerPool, "_start", interrupted)
    # Another thread, as a notebook has: the kernel may hand it the SIGINT, which a mask
    # set in the main thread alone does not hold back.
    done = threading.Event()
    other = threading.Thread(target=done.wait)
    other.start()
    backend = MultiprocessBackend(2, "fork", inline=False)  # a first run starts its workers
    try:
        with pytest.raises(KeyboardInterrupt):
            run(AddStep(), number_samples(100), backend=backend, progress=False)
    finally:
        done.set()
        other.join()
    monkeypatch.undo()
    assert not multiprocess.active_children()  # the started worker was stopped and reaped
    again = run(AddStep(), number_samples(100), workers=2, start_method="fork", progress=False)
    assert again.status == "complete"
