"""Demo pipeline: ``python -m datamultiproc.demo``.

Processes a few thousand synthetic samples through a Compose with a Cache and a
Save into a temporary folder, twice, and prints what happened.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from datamultiproc import BaseSample, Cache, Compose, Processor, Save


class SignalSample(BaseSample):
    signal: np.ndarray
    mean: float | None
    peak: float | None


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
        started = time.perf_counter()
        results = [pipeline(sample) for sample in make_samples(args.samples)]
        seconds = time.perf_counter() - started
        print(f"{attempt}: {len(results)} samples in {seconds:.2f} s")
    saved = sum(1 for _ in (root / "save").rglob("*.pickle"))
    print(f"saved files: {saved}; first sample history: {results[0].processing_history}")


if __name__ == "__main__":
    main()
