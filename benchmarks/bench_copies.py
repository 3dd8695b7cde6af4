"""What running on copies costs: ``run`` on the in-process backends never changes inputs.

Run from the repository root::

    python benchmarks/bench_copies.py            # 20,000 W1 samples, 5 repeats
    python benchmarks/bench_copies.py --quick    # 2,000 samples, 3 repeats

Part 1 times W1 of ``bench_runner.py`` (tiny samples through a trivial step) on the
sequential backend as shipped (a deep copy of every sample) and with the copy
switched off (the caller's samples changed in place, as before 0.2.0). Part 2 times
one copy per sample with the candidates: ``copy_sample`` (used; the same result as
``model_copy(deep=True)`` with a fast path for plain values), ``model_copy(deep=True)``,
``copy.deepcopy`` and a pickle round trip, for a W1 sample and a 2 MiB array sample.
Prints Markdown tables of medians.
"""

from __future__ import annotations

import argparse
import copy
import pickle
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_runner

import datamultiproc
from datamultiproc.execution import _backends
from datamultiproc.execution._copies import copy_sample


def run_w1(samples: list[Any], copies: bool) -> None:
    # The sequential backend's run_sample, with copy_input ignored for the in-place variant.
    original = _backends.run_sample  # type: ignore[attr-defined]
    if not copies:

        def in_place(*args: Any, copy_input: bool = False, **kwargs: Any) -> Any:
            return original(*args, **kwargs)

        _backends.run_sample = in_place  # type: ignore[attr-defined]
    try:
        datamultiproc.run(bench_runner.AddOne(), samples, backend="sequential", progress=False)
    finally:
        _backends.run_sample = original  # type: ignore[attr-defined]


def median_seconds(fn: Callable[..., Any], make: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        data = make()
        started = time.perf_counter()
        fn(data) if data is not None else fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    count, repeats = (2_000, 3) if args.quick else (20_000, 5)

    def make() -> list[Any]:
        return [bench_runner.TinySample(id=f"t{i}", data=i) for i in range(count)]

    with_copies = median_seconds(lambda s: run_w1(s, True), make, repeats)
    in_place = median_seconds(lambda s: run_w1(s, False), make, repeats)
    print(f"W1, sequential backend, {count:,} samples, median of {repeats}\n")
    print("| run | seconds | per sample | vs in place |")
    print("|---|---:|---:|---:|")
    for name, seconds in (("in place (no copy)", in_place), ("on copies (0.2.0)", with_copies)):
        print(
            f"| {name} | {seconds:.3f} | {seconds / count * 1e6:.1f} µs | {seconds / in_place:.2f}x |"
        )

    tiny = make()
    arrays = [bench_runner.ArraySample(id=f"a{i}", array=np.ones(1 << 18)) for i in range(50)]
    candidates: dict[str, Callable[[Any], Any]] = {
        "copy_sample (used)": copy_sample,
        "model_copy(deep=True)": lambda s: s.model_copy(deep=True),
        "copy.deepcopy": copy.deepcopy,
        "pickle round trip": lambda s: pickle.loads(pickle.dumps(s, protocol=5)),
    }
    print("\n| copy | W1 sample | 2 MiB array sample |")
    print("|---|---:|---:|")
    for name, fn in candidates.items():
        small = median_seconds(lambda f=fn: [f(s) for s in tiny], lambda: None, repeats) / count
        large = median_seconds(lambda f=fn: [f(s) for s in arrays], lambda: None, repeats) / 50
        print(f"| {name} | {small * 1e6:.1f} µs | {large * 1e6:.0f} µs |")


if __name__ == "__main__":
    main()
