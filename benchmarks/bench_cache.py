"""Cache hit cost against a plain ``pickle.load`` loop over the same files.

Run from the repository root::

    python benchmarks/bench_cache.py            # full run (200,000-entry folder included)
    python benchmarks/bench_cache.py --quick    # smaller, for a smoke test

Prints a Markdown table of medians over ``--repeats`` runs, the two sides alternating,
timed as CPU time of the measuring thread. Files are written to a temporary directory
(``--dir`` to choose one) that is removed at the end.
"""

from __future__ import annotations

import argparse
import pickle
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from datamultiproc import BaseSample, Cache, Compose, Processor


class SmallSample(BaseSample):
    data: int
    label: str = ""
    score: float = 0.0


class ArraySample(BaseSample):
    array: np.ndarray


class Normalize(Processor):
    offset: float = 0.5

    def process(self, sample: SmallSample) -> SmallSample:
        sample.score = sample.data * self.offset
        return sample


class Scale(Processor):
    factor: float = 2.0

    def process(self, sample: ArraySample) -> ArraySample:
        sample.array = sample.array * self.factor
        return sample


def median_seconds(
    cached: Callable[[], None], plain: Callable[[], None], repeats: int
) -> tuple[float, float]:
    """Median CPU seconds of ``cached`` and of ``plain``, run alternately.

    CPU time of this thread (user and system: the copies from the page cache count), so
    that time spent waiting for a core on a shared machine counts for neither side;
    alternating lets slower phases hit both sides alike.
    """
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for run, spent in ((cached, times[0]), (plain, times[1])):
            started = time.thread_time()
            run()
            spent.append(time.thread_time() - started)
    return statistics.median(times[0]), statistics.median(times[1])


def plain_loads(paths: list[Path]) -> Callable[[], None]:
    names = [str(path) for path in paths]  # the plain side's best case: no Path per open

    def run() -> None:
        for path in names:
            with open(path, "rb") as handle:
                pickle.load(handle)

    return run


def cache_hits(pipeline: Compose, samples: list[BaseSample]) -> Callable[[], None]:
    def run() -> None:
        for sample in samples:
            pipeline(sample)

    return run


def small_samples(count: int, prefix: str = "sample") -> list[BaseSample]:
    return [SmallSample(id=f"{prefix}-{i:06d}", data=i, label=f"item {i}") for i in range(count)]


def bench_small(root: Path, count: int, repeats: int) -> list[str]:
    cache = Cache(processor=Normalize(), cache_dir=root / "small")
    pipeline = Compose(cache)
    samples = small_samples(count)
    cache_hits(pipeline, samples)()  # fill
    paths = [cache.entry_path(s) for s in samples]
    cached, plain = median_seconds(cache_hits(pipeline, samples), plain_loads(paths), repeats)
    size = paths[0].stat().st_size
    return [
        f"| small samples ({size} B), hits/s | {count / cached:,.0f} | {count / plain:,.0f} "
        f"| {cached / plain:.2f} |"
    ]


def bench_large(root: Path, count: int, megabytes: int, repeats: int) -> list[str]:
    cache = Cache(processor=Scale(), cache_dir=root / "large")
    pipeline = Compose(cache)
    rng = np.random.default_rng(0)
    length = megabytes * 1024 * 1024 // 8
    samples: list[BaseSample] = [
        ArraySample(id=f"array-{i:03d}", array=rng.normal(size=length)) for i in range(count)
    ]
    cache_hits(pipeline, samples)()
    paths = [cache.entry_path(s) for s in samples]
    total_mb = sum(p.stat().st_size for p in paths) / 1e6
    cached, plain = median_seconds(cache_hits(pipeline, samples), plain_loads(paths), repeats)
    return [
        f"| {megabytes} MB numpy samples, MB/s | {total_mb / cached:,.0f} | {total_mb / plain:,.0f} "
        f"| {cached / plain:.2f} |"
    ]


def bench_folder_size(root: Path, entries: int, probes: int, repeats: int) -> list[str]:
    """Hit cost with ``entries`` files in the stage folder, probing ``probes`` of them."""
    cache = Cache(processor=Normalize(offset=0.25), cache_dir=root / f"folder-{entries}")
    pipeline = Compose(cache)
    samples = small_samples(entries, prefix="entry")
    pipeline(samples[0])  # creates the folder and its manifest
    for sample in samples[1:]:
        # Write entries directly (as a miss would), which is much faster than computing them.
        stored = SmallSample(id=sample.id, data=0, processing_history=[("Normalize", "")])
        cache.entry_path(sample).write_bytes(pickle.dumps(stored, protocol=5))
    step = max(1, entries // probes)
    probe = samples[::step][:probes]
    paths = [cache.entry_path(s) for s in probe]
    cached, plain = median_seconds(cache_hits(pipeline, probe), plain_loads(paths), repeats)
    return [
        f"| {entries:,} entries in one folder, µs per hit | {cached / len(probe) * 1e6:.1f} "
        f"| {plain / len(probe) * 1e6:.1f} | {cached / plain:.2f} |"
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Cache hit cost vs plain pickle.load.")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: temp)")
    args = parser.parse_args(argv)
    small, large, large_mb = (500, 3, 4) if args.quick else (5_000, 20, 8)
    folder_sizes = (1_000, 10_000) if args.quick else (1_000, 200_000)
    root = Path(tempfile.mkdtemp(prefix="bench-cache-", dir=args.dir))
    try:
        rows = ["| case | Cache hit | plain pickle.load | ratio (time) |", "|---|---:|---:|---:|"]
        rows += bench_small(root, small, args.repeats)
        rows += bench_large(root, large, large_mb, args.repeats)
        for entries in folder_sizes:
            rows += bench_folder_size(root, entries, probes=1_000, repeats=args.repeats)
        print("\n".join(rows))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
