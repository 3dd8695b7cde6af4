"""``plan()`` for 10,000 samples against running the same (all-hit) pipeline.

Run from the repository root::

    python benchmarks/bench_plan.py            # 10,000 samples, 5 repeats
    python benchmarks/bench_plan.py --quick    # 1,000 samples, 2 repeats

The cache holds an entry for 9,000 of the samples. ``plan`` lists the configuration
folder once and reads the timing trailer of a few entries; the run loads every
entry. Prints a Markdown table of medians.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from datamultiproc import BaseSample, Cache, Compose, Processor, run


class SmallSample(BaseSample):
    data: int
    score: float = 0.0


class Normalize(Processor):
    offset: float = 0.5

    def process(self, sample: SmallSample) -> SmallSample:
        sample.score = sample.data * self.offset
        return sample


class Double(Processor):
    def process(self, sample: SmallSample) -> SmallSample:
        sample.data = sample.data * 2
        return sample


def _samples(count: int) -> list[SmallSample]:
    return [SmallSample(id=f"sample-{i:06d}", data=i) for i in range(count)]


def _pipeline(cache_dir: Path, offset: float = 0.5) -> Compose:
    return Compose(
        Cache(processor=Normalize(offset=offset), cache_dir=cache_dir),
        Cache(processor=Double(), cache_dir=cache_dir),
    )


def _median(action: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    count, repeats = (1_000, 2) if args.quick else (10_000, 5)
    root = Path(tempfile.mkdtemp(prefix="bench-plan-"))
    try:
        cache_dir = root / "cache"
        run(_pipeline(cache_dir), _samples(count * 9 // 10), backend="sequential", progress=False)
        samples = _samples(count)
        rows = [
            (
                "plan(), 90 % would hit",
                _median(lambda: _pipeline(cache_dir).plan(samples), repeats),
            ),
            (
                "plan(), parameter changed (all miss)",
                _median(lambda: _pipeline(cache_dir, 0.25).plan(samples), repeats),
            ),
            (
                "run() of the same, sequential (loads hits)",
                _median(
                    lambda: run(
                        _pipeline(cache_dir),
                        _samples(count * 9 // 10),
                        backend="sequential",
                        progress=False,
                    ),
                    repeats,
                ),
            ),
        ]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"| {count:,} samples, 2 cached stages | median seconds |")
    print("|---|---:|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.3f} |")


if __name__ == "__main__":
    main()
