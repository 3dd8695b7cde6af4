"""Workers never outlive their parent, Ctrl-C in an ``imap`` loop's body stops the run,
and a repeated id is caught wherever it would clash on disk."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from datamultiproc import Cache, Compose, Processor, Save
from datamultiproc.exceptions import FailuresWarning
from tests.helpers import AddStep, NumberSample, number_samples

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[3]
METHODS = ["fork", "spawn", "forkserver"]

ORPHAN_SCRIPT = textwrap.dedent(
    """
    import sys
    from datamultiproc.execution import MultiprocessBackend
    from tests.helpers import MarkAndWait, number_samples

    directory, method, busy = sys.argv[1], sys.argv[2], sys.argv[3] == "busy"
    step = MarkAndWait(directory=directory, seconds=60, busy=busy)
    # inline=False: a first run would time its first (60 s) sample in this process first.
    backend = MultiprocessBackend(2, method, inline=False)
    for _ in step.imap(number_samples(8), backend=backend, progress=False):
        pass
    """
)


def _started(directory: Path, count: int, *, timeout: float = 60) -> list[Path]:
    deadline = time.monotonic() + timeout
    while len(markers := sorted(directory.iterdir())) < count:
        assert time.monotonic() < deadline, "the samples did not start"
        time.sleep(0.02)
    return markers


def _gone_after(pids: list[int], since: float, limit: float) -> float:
    """Seconds from ``since`` until every pid has exited (zombies count as exited)."""
    while time.monotonic() - since < limit:
        alive = []
        for pid in pids:
            with contextlib.suppress(psutil.NoSuchProcess):
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
        if not alive:
            return time.monotonic() - since
        time.sleep(0.01)
    return float("inf")


@pytest.mark.parametrize("how", ["sleep", "busy"])
@pytest.mark.parametrize("start_method", METHODS)
def test_workers_exit_within_a_second_of_a_killed_parent(
    start_method: str, how: str, tmp_path: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    parent = subprocess.Popen(
        [sys.executable, "-c", ORPHAN_SCRIPT, str(tmp_path), start_method, how],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
    )
    workers: list[int] = []
    try:
        markers = _started(tmp_path, 2)  # both workers are inside a 60 s sample
        workers = sorted({int(marker.suffix[1:]) for marker in markers})
        assert len(workers) == 2
        assert all(psutil.pid_exists(pid) for pid in workers)
        killed = time.monotonic()
        parent.kill()
        parent.wait(10)
        assert _gone_after(workers, killed, 1.0) <= 1.0, f"workers {workers} outlived the parent"
    finally:
        if parent.poll() is None:
            parent.kill()
        for pid in workers:
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(pid).kill()
        parent.wait(10)
        assert parent.stderr is not None
        parent.stderr.close()


LOOP_BODY_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    import psutil
    from tests.helpers import MarkAndWait, number_samples

    def workers():
        # Not multiprocess's helpers (resource tracker, fork server), which are our
        # children; forkserver workers are the fork server's children.
        helpers = ("from multiprocess.resource_tracker", "from multiprocess.forkserver")
        me = psutil.Process()
        return sorted(
            c.pid for c in me.children(recursive=True)
            if c.status() != psutil.STATUS_ZOMBIE
            and not (c.ppid() == me.pid and any(p.startswith(helpers) for p in c.cmdline()))
        )

    directory, method = sys.argv[1], sys.argv[2]
    step = MarkAndWait(directory=directory, seconds=0.5)
    samples = step.imap(number_samples(40), workers=2, start_method=method, progress=False)
    try:
        for count, sample in enumerate(samples):
            if count == 1:
                print(json.dumps({"body": workers()}), flush=True)
                time.sleep(30)  # the user's loop body: Ctrl-C lands here
    except KeyboardInterrupt:
        caught = time.time()
    left = workers()
    # ``samples`` is still referenced; the next run must use one pool, not a second one.
    rerun = MarkAndWait(directory=directory + "-rerun", seconds=0.01).run(
        number_samples(6), workers=2, start_method=method, progress=False
    )
    print(json.dumps({"caught": caught, "left": left, "status": rerun.status,
                      "n": rerun.n_ok, "workers": workers()}), flush=True)
    """
)


@pytest.mark.parametrize("start_method", METHODS)
def test_ctrl_c_in_the_body_of_an_imap_loop_stops_the_run_at_once(
    start_method: str, tmp_path: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    markers = tmp_path / "markers"
    markers.mkdir()
    (tmp_path / "markers-rerun").mkdir()
    with subprocess.Popen(
        [sys.executable, "-c", LOOP_BODY_SCRIPT, str(markers), start_method],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as driver:
        assert driver.stdout is not None
        assert driver.stderr is not None
        try:
            line = driver.stdout.readline()
            assert line, driver.stderr.read()
            workers = json.loads(line)["body"]
            time.sleep(0.2)  # both workers are inside a sample, another one queued each
            sent = time.time()
            os.kill(driver.pid, signal.SIGINT)
            line = driver.stdout.readline()
            driver.wait(60)
        finally:
            if driver.poll() is None:
                driver.kill()
        errors = driver.stderr.read()
    assert line, errors
    out = json.loads(line)
    assert len(workers) == 2
    starts = [float(marker.read_text()) for marker in markers.iterdir()]
    # No sample started after the interrupt (10 ms: the signal's delivery to the handler).
    assert max(starts) < sent + 0.01, sorted(starts)[-3:]
    assert out["caught"] - sent < 0.5
    assert out["left"] == []  # the workers were gone by the time the user's code saw Ctrl-C
    assert not any(psutil.pid_exists(pid) for pid in workers)
    assert out["status"] == "complete"
    assert out["n"] == 6
    assert len(out["workers"]) == 2  # one warm pool, no second one beside a live one
    assert not set(out["workers"]) & set(workers)


def _with_a_repeated_id() -> Iterator[NumberSample]:
    yield from number_samples(20)
    yield NumberSample(id="s7", data=700)  # would overwrite, or be served, s7's file
    yield NumberSample(id="s20", data=20)


@pytest.mark.parametrize("storage", ["cache", "save"])
def test_a_repeated_id_is_an_error_where_it_would_clash_on_disk(
    storage: str, tmp_path: Path
) -> None:
    step: Processor
    if storage == "cache":
        step = Cache(processor=AddStep(), cache_dir=tmp_path)
    else:
        step = Compose(AddStep(), Save(save_to_dir=tmp_path))
    with pytest.warns(FailuresWarning, match="1 of 22"):
        result = step.run(_with_a_repeated_id(), workers=2, start_method="fork", progress=False)
    assert [failure.index for failure in result.failures] == [20]
    assert "duplicate sample id 's7'" in result.failures[0].message
    assert {s.id: s.data for s in result}["s7"] == 8  # the first s7, not the repeat
    saved = {path.stem: NumberSample.read_file(path) for path in tmp_path.rglob("*.pickle")}
    assert len(saved) == 21
    if storage == "save":
        assert saved["s7"].data == 8
    with pytest.raises(ValueError, match="duplicate sample id 's7'"):
        step.run(_with_a_repeated_id(), workers=2, on_error="raise", progress=False)
