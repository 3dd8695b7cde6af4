"""Runs driven from fresh interpreters: notebook-style ``__main__``, Ctrl-C.

Memory over long generators: ``test_memory.py``.
"""

from __future__ import annotations

import json
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

# Classes defined in __main__ with no file behind it, as in a notebook cell.
NOTEBOOK_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from datamultiproc import BaseSample, Compose, Processor

    class CellSample(BaseSample):
        data: int
        array: np.ndarray | None = None

    OFFSET = 10

    class CellStep(Processor):
        factor: int = 2

        def process(self, sample):
            sample.data = sample.data * self.factor + OFFSET
            sample.array = np.full(3, sample.data)
            return sample

    pipeline = Compose(CellStep(), CellStep(factor=3))
    samples = [CellSample(id=f"c{i}", data=i) for i in range(40)]
    result = pipeline.run(samples, workers=2, start_method=sys.argv[1], progress=False)
    print(json.dumps({
        "status": result.status,
        "data": [s.data for s in result],
        "same_class": all(type(s) is CellSample for s in result),
        "array": result.samples[1].array.tolist(),
    }))
    """
)


def _python(
    args: list[str], *, stdin: str | None = None, timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.parametrize("start_method", METHODS)
@pytest.mark.parametrize("via", ["-c", "stdin"])
def test_notebook_classes_reach_workers(start_method: str, via: str) -> None:
    if via == "-c":
        completed = _python(["-c", NOTEBOOK_SCRIPT, start_method])
    else:
        completed = _python(["-", start_method], stdin=NOTEBOOK_SCRIPT)
    assert completed.returncode == 0, completed.stderr
    out = json.loads(completed.stdout.strip().splitlines()[-1])
    assert out["status"] == "complete"
    assert out["same_class"]
    assert out["data"] == [(i * 2 + 10) * 3 + 10 for i in range(40)]
    assert out["array"] == [46, 46, 46]


INTERRUPT_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    import psutil
    from datamultiproc import Cache, Compose
    from tests.helpers import AddStep, SleepOn, number_samples

    cache_dir, method = sys.argv[1], sys.argv[2]
    slow = SleepOn(ids=[f"s{i}" for i in range(400)], seconds=0.05)
    pipeline = Compose(Cache(processor=slow, cache_dir=cache_dir), AddStep())
    print("ready", flush=True)
    try:
        pipeline.run(number_samples(400), workers=2, start_method=method, progress=False)
        print(json.dumps({"finished": True}), flush=True)
        sys.exit(0)
    except KeyboardInterrupt:
        caught = time.time()
    # Left over: only multiprocess's helpers (resource tracker, fork server), no workers.
    children = [
        " ".join(c.cmdline()) for c in psutil.Process().children(recursive=True)
        if c.status() != psutil.STATUS_ZOMBIE
    ]
    rerun = pipeline.run(number_samples(400), workers=2, start_method=method, progress=False)
    hits = sum(1 for record in rerun.records if record.steps[0].cache_hit)
    print(json.dumps({"caught": caught, "children": children, "status": rerun.status,
                      "n": rerun.n_ok, "hits": hits}), flush=True)
    """
)


@pytest.mark.parametrize("start_method", METHODS)
def test_sigint_to_the_process_group_stops_quickly_and_leaves_no_worker(
    start_method: str, tmp_path: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen(
        [sys.executable, "-c", INTERRUPT_SCRIPT, str(tmp_path / "cache"), start_method],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, like a Jupyter kernel
    ) as driver:
        assert driver.stdout is not None
        assert driver.stderr is not None
        try:
            assert driver.stdout.readline().strip() == "ready"
            deadline = time.monotonic() + 30
            while len(list((tmp_path / "cache").rglob("*.pickle"))) < 10:  # workers are busy
                assert time.monotonic() < deadline, "the run did not start"
                time.sleep(0.05)
            descendants = psutil.Process(driver.pid).children(recursive=True)
            sent = time.time()
            os.killpg(driver.pid, signal.SIGINT)
            line = driver.stdout.readline()
            driver.wait(60)
        finally:
            if driver.poll() is None:
                driver.kill()
        errors = driver.stderr.read()
    assert line, errors
    out = json.loads(line)
    assert out["caught"] - sent < 0.5
    assert not [c for c in out["children"] if "resource_tracker" not in c and "forkserver" not in c]
    _, alive = psutil.wait_procs(descendants, timeout=10)
    assert alive == []
    assert out["status"] == "complete"
    assert out["n"] == 400
    assert out["hits"] >= 10  # entries written before the interrupt were valid and reused
