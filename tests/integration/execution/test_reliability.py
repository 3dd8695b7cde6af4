"""Workers never outlive their parent, and Ctrl-C in an ``imap`` loop's body stops the run."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[3]
METHODS = ["fork", "spawn", "forkserver"]

ORPHAN_SCRIPT = textwrap.dedent(
    """
    import sys
    from tests.helpers import MarkAndWait, number_samples

    directory, method, busy = sys.argv[1], sys.argv[2], sys.argv[3] == "busy"
    step = MarkAndWait(directory=directory, seconds=60, busy=busy)
    for _ in step.imap(number_samples(8), workers=2, start_method=method, progress=False):
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
