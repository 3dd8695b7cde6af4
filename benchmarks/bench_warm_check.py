"""Cost of the stale-code check on a warm run: W1 of bench_runner with and without it.

Run from the repository root::

    python benchmarks/bench_warm_check.py            # 50,000 tiny samples, 7 repeats each
    python benchmarks/bench_warm_check.py --quick    # 5,000 samples, 3 repeats

Both variants run in this one process, interleaved, on the same warm pool of 2 fork
workers; "without" replaces the user-module check by a constant. Prints medians, and
the two halves of the check executor and Dask workers get instead (``_reloads``): the
parent's ``code_token()`` once per run, a worker's ``follow()`` + ``note_imports()`` per
chunk while nothing changed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_runner import AddOne, TinySample

import datamultiproc
from datamultiproc.execution import _pool, _reloads
from datamultiproc.execution._codestate import code_state


def _run(count: int) -> float:
    samples = [TinySample(id=f"t{i}", data=i) for i in range(count)]
    started = time.perf_counter()
    datamultiproc.run(AddOne(), samples, workers=2, start_method="fork", progress=False)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    count, repeats = (5_000, 3) if args.quick else (50_000, 7)
    _run(count)  # start the warm pool
    timings: dict[str, list[float]] = {"with the check": [], "without (constant)": []}
    for _ in range(repeats):
        _pool.code_state = code_state  # type: ignore[attr-defined]
        timings["with the check"].append(_run(count))
        _pool.code_state = lambda: ()  # type: ignore[attr-defined]
        timings["without (constant)"].append(_run(count))
    _pool.code_state = code_state  # type: ignore[attr-defined]
    check = statistics.median(_each(code_state, 100) for _ in range(5))
    token = statistics.median(_each(_reloads.code_token, 100) for _ in range(5))
    worker = statistics.median(_each(_worker_check(), 100_000) for _ in range(5))
    print(f"| W1 warm, {count:,} samples, 2 fork workers | median seconds |")
    print("|---|---:|")
    for name, values in timings.items():
        print(f"| {name} | {statistics.median(values):.3f} |")
    print(f"| code_state() alone | {check * 1e3:.3f} ms |")
    print(f"| executor/Dask: code_token() in the parent, per run | {token * 1e3:.3f} ms |")
    print(f"| executor/Dask: a worker's check per chunk, unchanged | {worker * 1e6:.3f} µs |")
    print(f"({len(sys.modules)} modules loaded, {len(code_state())} of them user modules)")


def _each(call: Callable[[], object], times: int) -> float:
    started = time.perf_counter()
    for _ in range(times):
        call()
    return (time.perf_counter() - started) / times


def _worker_check() -> Callable[[], object]:
    token = _reloads.code_token()
    _reloads.follow(token)  # in this process nothing is reloaded; the next calls only compare

    def check() -> None:
        _reloads.follow(token)
        _reloads.note_imports()

    return check


if __name__ == "__main__":
    main()
