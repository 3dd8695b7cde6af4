"""How fast workers go when their parent is killed, and when Ctrl-C lands in a loop body.

Run from the repository root::

    python benchmarks/bench_reliability.py            # 5 repeats per row; about a minute
    python benchmarks/bench_reliability.py --quick    # 1 repeat

Orphans: a parent process runs ``imap`` with two workers, each inside a 60 s sample
(``time.sleep``, or a busy numpy loop); the parent is SIGKILLed and the time until
both workers have exited is measured from outside (psutil). Interrupts: a real SIGINT
reaches a process while its ``imap`` loop body sleeps and both workers are inside a
sample; measured are the time until ``KeyboardInterrupt`` reaches the loop body (the
workers already gone then) and until the workers' pids are gone as seen from outside.
The scenarios are the ones ``tests/integration/execution/test_reliability.py`` checks.
Prints Markdown tables of medians and maxima in milliseconds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.execution.test_reliability import (  # noqa: E402
    LOOP_BODY_SCRIPT,
    ORPHAN_SCRIPT,
    _gone_after,
    _started,
)

METHODS = ["fork", "spawn", "forkserver"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def orphan_exit_seconds(method: str, how: str) -> float:
    """Seconds from SIGKILL of the parent until both of its busy workers are gone."""
    with tempfile.TemporaryDirectory() as directory:
        parent = subprocess.Popen(
            [sys.executable, "-c", ORPHAN_SCRIPT, directory, method, how], cwd=ROOT, env=ENV
        )
        workers = sorted({int(m.suffix[1:]) for m in _started(Path(directory), 2)})
        killed = time.monotonic()
        parent.kill()
        seconds = _gone_after(workers, killed, 10.0)
        parent.wait(10)
        for pid in workers:
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(pid).kill()
    return seconds


def interrupt_seconds(method: str) -> tuple[float, float]:
    """Seconds from SIGINT until the loop body sees it, and until the workers are gone."""
    with tempfile.TemporaryDirectory() as directory:
        markers = Path(directory) / "markers"
        markers.mkdir()
        (Path(directory) / "markers-rerun").mkdir()
        with subprocess.Popen(
            [sys.executable, "-c", LOOP_BODY_SCRIPT, str(markers), method],
            cwd=ROOT,
            env=ENV,
            stdout=subprocess.PIPE,
            text=True,
        ) as driver:
            assert driver.stdout is not None
            workers = json.loads(driver.stdout.readline())["body"]
            time.sleep(0.2)
            sent_wall, sent = time.time(), time.monotonic()
            os.kill(driver.pid, signal.SIGINT)
            gone = _gone_after(workers, sent, 10.0)
            out = json.loads(driver.stdout.readline())
            driver.wait(60)
    return out["caught"] - sent_wall, gone


def _ms(values: list[float]) -> str:
    return f"{1000 * statistics.median(values):.0f} | {1000 * max(values):.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one repeat per row")
    repeats = 1 if parser.parse_args().quick else 5
    print("| parent SIGKILLed, workers inside a 60 s sample | start method | median ms | max ms |")
    print("|---|---|---:|---:|")
    for how in ("sleep", "busy"):
        for method in METHODS:
            times = [orphan_exit_seconds(method, how) for _ in range(repeats)]
            print(f"| workers gone ({how}) | {method} | {_ms(times)} |")
    print()
    print("| Ctrl-C in an imap loop body | start method | median ms | max ms |")
    print("|---|---|---:|---:|")
    for method in METHODS:
        pairs = [interrupt_seconds(method) for _ in range(repeats)]
        print(f"| KeyboardInterrupt in the body | {method} | {_ms([p[0] for p in pairs])} |")
        print(f"| workers gone | {method} | {_ms([p[1] for p in pairs])} |")


if __name__ == "__main__":
    main()
