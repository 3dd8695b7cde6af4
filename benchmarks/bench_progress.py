"""What the progress display costs: W1 with progress off, as a tqdm bar, and as the widget panel.

Run from the repository root::

    python benchmarks/bench_progress.py              # 50,000 samples, 5 repeats
    python benchmarks/bench_progress.py --quick      # 5,000 samples, 3 repeats

W1 (issue 4): 50,000 tiny samples through a trivial step, the workload where
per-sample overhead shows most. Runs use backend="process" with warm workers (one
warm-up run first), so the figures compare the displays, not pool start-up. The
widget panel runs headless here (no browser attached): that measures its event
handling and drawing in the kernel's process, which is what slows a run down.
A second table feeds the same number of events straight to each display.
Prints Markdown tables of medians.
"""

from __future__ import annotations

import argparse
import gc
import io
import statistics
import time
from typing import Any

import datamultiproc
from datamultiproc import BaseSample, Processor
from datamultiproc.core import SampleRecord, StepRecord
from datamultiproc.execution import RunFinished, RunStarted, SampleFinished
from datamultiproc.notebook import TextProgress, WidgetProgress


class TinySample(BaseSample):
    data: int


class AddOne(Processor):
    def process(self, sample: TinySample) -> TinySample:
        sample.data = sample.data + 1
        return sample


def make_progress(mode: str) -> Any:
    if mode == "off":
        return False
    if mode == "text (tqdm)":
        return TextProgress(file=io.StringIO())  # a real bar, written where no terminal slows it
    return WidgetProgress()


def time_run(count: int, mode: str) -> float:
    samples = [TinySample(id=f"t{i}", data=i) for i in range(count)]
    gc.collect()  # leftovers of the previous run are not this run's cost
    started = time.perf_counter()
    result = datamultiproc.run(AddOne(), samples, backend="process", progress=make_progress(mode))
    elapsed = time.perf_counter() - started
    assert result.n_ok == count, result
    return elapsed


def time_events(count: int, mode: str) -> float:
    step = (StepRecord(0, "AddOne", "", 1e-6),)
    events = [SampleFinished(SampleRecord(i, f"t{i}", "w", "ok", step)) for i in range(count)]
    display = make_progress(mode)
    started = time.perf_counter()
    display.handle(RunStarted(count, ("AddOne",), "process", 2))
    for event in events:
        display.handle(event)
    display.handle(RunFinished("complete", count, 0, 1.0))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 samples, 3 repeats")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    count = 5_000 if args.quick else 50_000
    repeats = args.repeats or (3 if args.quick else 5)
    modes = ["off", "text (tqdm)", "widget (headless)"]

    time_run(count // 10, "off")  # start the workers once: later runs are warm
    runs: dict[str, list[float]] = {mode: [] for mode in modes}
    for repeat in range(repeats):
        # Interleaved and rotated, so that drift and ordering affect every mode alike.
        for mode in modes[repeat % 3 :] + modes[: repeat % 3]:
            runs[mode].append(time_run(count, mode))
    baseline = statistics.median(runs["off"])
    print(f"W1: {count:,} samples, backend='process', warm workers, median of {repeats}\n")
    print("| progress | wall time (s) | µs per sample | overhead |")
    print("|---|---:|---:|---:|")
    for mode in modes:
        median = statistics.median(runs[mode])
        overhead = (median - baseline) / baseline
        print(f"| {mode} | {median:.2f} | {median / count * 1e6:.1f} | {overhead:+.1%} |")

    print(f"\nThe displays alone, fed {count:,} events in one process, median of {repeats}\n")
    print("| display | total (ms) | µs per event |")
    print("|---|---:|---:|")
    for mode in modes[1:]:
        median = statistics.median(time_events(count, mode) for _ in range(repeats))
        print(f"| {mode} | {median * 1e3:.1f} | {median / count * 1e6:.2f} |")


if __name__ == "__main__":
    main()
