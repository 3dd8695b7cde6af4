"""Cold runs of tiny samples: workers that go once the parent takes over, against workers that stay.

Run from the repository root::

    python benchmarks/bench_cold.py            # W1 (20,000 tiny samples), 9 rounds
    python benchmarks/bench_cold.py --quick    # 2,000 samples, 3 rounds

Every contender runs in this one process, interleaved round by round, on 2 fork
workers. "cold" is a first run, with no worker alive and nothing recalled (it starts
workers only if its first samples say they would win), shut down after the run (as in
bench_runner); "rerun" follows a run whose samples ended up in the parent (the
notebook's second run of a cell); "warm" reuses workers kept from earlier runs.
"(workers stay)" is the behaviour before forked workers retired: the run keeps the
workers it started, and a rerun measures them again. Prints medians of the wall time,
the parent's CPU time (less sensitive to other programs on the machine) and its page
faults (a live forked worker makes the parent copy every page it writes to first).
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import statistics
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dill

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_runner import WORKLOADS, plain_loop

import datamultiproc
from datamultiproc.execution import MultiprocessBackend, _multiprocess, _pool
from datamultiproc.execution._pool import shutdown_pools

make, pipeline, _, _ = WORKLOADS["W1"]


@contextlib.contextmanager
def _workers_stay(stay: bool) -> Iterator[None]:
    if not stay:
        yield
        return
    retire, remember = _multiprocess._Scheduler._retire_young, _pool.WorkerPool.remember
    _multiprocess._Scheduler._retire_young = lambda self: None  # type: ignore[method-assign]
    _pool.WorkerPool.remember = lambda self, key, figures, quiet_until=0.0: None  # type: ignore[method-assign]
    try:
        yield
    finally:
        _multiprocess._Scheduler._retire_young = retire  # type: ignore[method-assign]
        _pool.WorkerPool.remember = remember  # type: ignore[method-assign]


def _run(samples: list[Any]) -> Any:
    return datamultiproc.run(pipeline, samples, workers=2, start_method="fork", progress=False)


def _prepare(kind: str, count: int) -> None:
    shutdown_pools()
    if kind == "warm":
        # Workers that served a run: they stay (a first run of tiny samples starts none).
        backend = MultiprocessBackend(2, "fork", inline=False)
        datamultiproc.run(pipeline, make(4), backend=backend, progress=False)
        _run(make(count))
    elif kind == "rerun":
        _run(make(count))


CONTENDERS: list[tuple[str, str, bool]] = [
    # name, kind, workers stay
    ("plain loop", "loop", False),
    ("datamultiproc.run (cold)", "cold", False),
    ("datamultiproc.run (cold, workers stay)", "cold", True),
    ("datamultiproc.run (rerun)", "rerun", False),
    ("datamultiproc.run (rerun, workers stay)", "rerun", True),
    ("datamultiproc.run (warm)", "warm", False),
]


def _measure(kind: str, stay: bool, count: int) -> tuple[float, float, float, float]:
    with _workers_stay(stay):
        _prepare(kind, count)
        samples = make(count)
        before = resource.getrusage(resource.RUSAGE_SELF)
        started, cpu = time.perf_counter(), time.process_time()
        if kind == "loop":
            out: Any = plain_loop(pipeline, samples, 2, 1)
        else:
            out = _run(samples)
            if kind == "cold":
                shutdown_pools()
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        after = resource.getrusage(resource.RUSAGE_SELF)
        parent = sum(r.worker == "parent" for r in out.records) if kind != "loop" else 0
        del out, samples
    return wall, cpu, after.ru_minflt - before.ru_minflt, parent


def median(column: int, rows: list[tuple[float, float, float, float]]) -> float:
    return statistics.median(row[column] for row in rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 samples, 3 rounds")
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=dill.PicklingWarning)
    count = 2_000 if args.quick else 20_000
    rounds = args.rounds or (3 if args.quick else 9)
    figures: dict[str, list[tuple[float, float, float, float]]] = {}
    for _ in range(rounds):
        for name, kind, stay in CONTENDERS:
            figures.setdefault(name, []).append(_measure(kind, stay, count))
    shutdown_pools()
    print(f"W1, {count:,} tiny samples, 2 fork workers, medians of {rounds} interleaved rounds\n")
    print("| contender | wall ms | vs loop | parent CPU ms | page faults | samples in parent |")
    print("|---|---:|---:|---:|---:|---:|")
    loop = median(0, figures["plain loop"])
    for name, rows in figures.items():
        wall = median(0, rows)
        print(
            f"| {name} | {wall * 1e3:.0f} | {loop / wall:.2f}x | {median(1, rows) * 1e3:.0f} "
            f"| {median(2, rows):,.0f} | {median(3, rows):,.0f} |"
        )


if __name__ == "__main__":
    main()
