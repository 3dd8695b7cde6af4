"""Size and render time of a sample's HTML display, and of a trace, for large images.

Run from the repository root::

    python benchmarks/bench_display.py            # 2048 x 2048 images, 15 repeats
    python benchmarks/bench_display.py --quick    # smaller, for a smoke test

Prints a Markdown table: the median time of ``sample._repr_html_()`` (and of
``pipeline.trace(sample)._repr_html_()``) and the size of the HTML, per image kind.
Noise is the worst case for PNG compression; a smooth image the usual one.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from datamultiproc import BaseSample, Compose, Processor


class Tile(BaseSample):
    image: np.ndarray
    mean: float | None = None


class Denoise(Processor):
    def process(self, sample: Tile) -> Tile:
        sample.image = (sample.image + np.roll(sample.image, 1, axis=0)) / 2
        return sample


class Measure(Processor):
    def process(self, sample: Tile) -> Tile:
        sample.mean = float(np.nanmean(sample.image))
        return sample


def _images(side: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:side, 0:side] / side
    smooth = np.sin(6 * x) * np.cos(4 * y)
    with_nan = smooth.copy()
    with_nan[: side // 8, : side // 8] = np.nan
    return {
        f"float64 {side}x{side} noise": rng.normal(size=(side, side)),
        f"float64 {side}x{side} smooth": smooth,
        f"float64 {side}x{side} smooth, NaN corner": with_nan,
        f"float32 {side}x{side}x3 RGB": rng.random((side, side, 3), dtype=np.float32),
        f"uint16 {side}x{side}": rng.integers(0, 4096, size=(side, side), dtype=np.uint16),
    }


def _median_ms(call: Callable[[], object], repeats: int) -> float:
    call()  # warm up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="512 x 512 images, 3 repeats")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    side, repeats = (512, 3) if args.quick else (2048, args.repeats)
    pipeline = Compose(Denoise(), Measure())
    print("| image | sample HTML | sample ms (median) | trace HTML | trace ms (median) |")
    print("|---|---:|---:|---:|---:|")
    for name, image in _images(side).items():
        sample = Tile(id="tile", image=image)
        page = sample._repr_html_()
        trace = pipeline.trace(sample)
        trace_page = trace._repr_html_()
        sample_ms = _median_ms(sample._repr_html_, repeats)
        trace_ms = _median_ms(trace._repr_html_, repeats)
        print(
            f"| {name} | {len(page.encode()) / 1000:.1f} kB | {sample_ms:.1f} | "
            f"{len(trace_page.encode()) / 1000:.1f} kB | {trace_ms:.1f} |"
        )


if __name__ == "__main__":
    main()
