"""Demo pipeline: ``python -m datamultiproc.demo``.

Runs a few thousand synthetic signals through a Compose with a Cache and a Save,
in parallel worker processes, into a temporary folder; then runs it again, when
the expensive cached step is loaded instead of recomputed, and prints what
happened in each run.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from datamultiproc import BaseSample, Cache, Compose, Processor, RunResult, Save


class SignalSample(BaseSample):
    signal: np.ndarray
    mean: float | None = None
    peak: float | None = None


class Denoise(Processor):
    """Repeated moving averages (they approach a Gaussian filter): the expensive step."""

    window: int = 7
    passes: int = 200

    def process(self, sample: SignalSample) -> SignalSample:
        kernel = np.ones(self.window) / self.window
        signal = sample.signal
        for _ in range(self.passes):
            signal = np.convolve(signal, kernel, mode="same")
        sample.signal = signal
        return sample


class Summarize(Processor):
    def process(self, sample: SignalSample) -> SignalSample:
        sample.mean = float(sample.signal.mean())
        sample.peak = float(np.abs(sample.signal).max())
        return sample


def make_samples(count: int, length: int = 2048) -> list[SignalSample]:
    rng = np.random.default_rng(0)
    return [
        SignalSample(id=f"signal-{i:05d}", signal=rng.normal(size=length)) for i in range(count)
    ]


def describe(label: str, result: RunResult[SignalSample]) -> None:
    hits = sum(1 for record in result.records if record.steps and record.steps[0].cache_hit)
    print(
        f"{label}: {result.n_ok} ok, {result.n_failed} failed, {hits} cache hits, "
        f"{result.wall_seconds:.2f} s on {result.workers} {result.backend} worker(s)"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=None, help="default: all usable cores")
    parser.add_argument("--backend", default="process", choices=["process", "thread", "sequential"])
    parser.add_argument(
        "--dir", type=Path, default=None, help="output folder (default: a temp dir)"
    )
    args = parser.parse_args(argv)
    root = args.dir or Path(tempfile.mkdtemp(prefix="datamultiproc-demo-"))
    pipeline = Compose(
        Cache(processor=Denoise(), cache_dir=root / "cache"),
        Summarize(),
        Save(save_to_dir=root / "save"),
    )
    print(f"pipeline: {pipeline!r}\noutput:   {root}\n")
    options = {"workers": args.workers, "backend": args.backend, "progress": "text"}
    first = pipeline.run(make_samples(args.samples), **options)
    describe("first run", first)
    rerun = pipeline.run(make_samples(args.samples), **options)
    describe("rerun    ", rerun)
    print(f"\nrerun was {first.wall_seconds / rerun.wall_seconds:.1f}x faster thanks to the cache")
    print("\nrerun, cache statistics per cached stage:")
    print(rerun.cache_stats().to_string())
    print("\nfirst run, time per stage:")
    print(first.timings().to_string())
    saved = sum(1 for _ in (root / "save").rglob("*.pickle"))
    print(f"\nsaved files: {saved}; history of the first sample:")
    print(f"  {rerun.samples[0].processing_history}")


if __name__ == "__main__":
    main()
