"""Demo pipeline: ``python -m datamultiproc.demo``.

Processes a few thousand synthetic samples through a Compose with a Cache and a
Save into a temporary folder with the parallel runner, twice (the second run loads
the cached step), and prints what happened.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from datamultiproc import BaseSample, Cache, Compose, Processor, Save


class SignalSample(BaseSample):
    signal: np.ndarray
    mean: float | None = None
    peak: float | None = None


class Smooth(Processor):
    window: int = 5

    def process(self, sample: SignalSample) -> SignalSample:
        kernel = np.ones(self.window) / self.window
        sample.signal = np.convolve(sample.signal, kernel, mode="same")
        return sample


class Summarize(Processor):
    def process(self, sample: SignalSample) -> SignalSample:
        sample.mean = float(sample.signal.mean())
        sample.peak = float(np.abs(sample.signal).max())
        return sample


def make_samples(count: int, length: int = 256) -> list[SignalSample]:
    rng = np.random.default_rng(0)
    return [
        SignalSample(id=f"signal-{i:05d}", signal=rng.normal(size=length)) for i in range(count)
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=None, help="default: all usable cores")
    parser.add_argument("--backend", default="process", choices=["process", "thread", "sequential"])
    parser.add_argument(
        "--dir", type=Path, default=None, help="output folder (default: a temp dir)"
    )
    args = parser.parse_args(argv)
    root = args.dir or Path(tempfile.mkdtemp(prefix="datamultiproc-demo-"))
    pipeline = Compose(
        Cache(processor=Smooth(window=7), cache_dir=root / "cache"),
        Summarize(),
        Save(save_to_dir=root / "save"),
    )
    print(f"pipeline: {pipeline!r}\noutput:   {root}")
    for attempt in ("first run", "rerun (cache hits)"):
        result = pipeline.run(
            make_samples(args.samples),
            workers=args.workers,
            backend=args.backend,
            progress=False,
        )
        hits = sum(1 for record in result.records if record.steps and record.steps[0].cache_hit)
        print(
            f"{attempt}: {result.n_ok} ok, {result.n_failed} failed, {hits} cache hits, "
            f"{result.wall_seconds:.2f} s on {result.workers} {result.backend} worker(s)"
        )
    saved = sum(1 for _ in (root / "save").rglob("*.pickle"))
    print(f"saved files: {saved}; first sample history: {result.samples[0].processing_history}")


if __name__ == "__main__":
    main()
