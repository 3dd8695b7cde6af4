"""Where a tiny sample's time goes: the plain loop against the parent's inline path.

Run from the repository root::

    python benchmarks/bench_inline.py            # 20,000 W1 samples, 9 repeats
    python benchmarks/bench_inline.py --quick    # 2,000 samples, 3 repeats

W1 of ``bench_runner.py`` (tiny samples through ``AddOne``). Each part runs over every
sample in a loop of its own, timed in CPU time of this thread (``time.thread_time``)
with the garbage collector off, the parts alternating in each repeat; then a warm
``datamultiproc.run`` and the plain loop, collector on, in wall time and the parent's
CPU time, the run's wall time split around the chunks the parent runs itself (the first
chunks go to the workers). Prints a Markdown table of medians in microseconds per sample
(of all the run's samples, for the split).

Parts of the plain loop's ``pipeline(sample)``: ``process()`` alone, the parameter text
for the history (``describe_params()``, built on every call). Parts of the inline path
(``ParentRunner.run``, which runs a pipeline of one plain processor through
``_plainstep.run_plain_step``): the copy of the sample (``copy_sample``) and the rest of
that loop without the copy (the step, the parameter text from the run's memo, the step
record, the sample's record and outcome). Last, what a pipeline that is not made of plain
processors only (one with a Cache or a Save) pays per step instead: ``_run_step`` under a
recorder.
"""

from __future__ import annotations

import argparse
import gc
import math
import statistics
import sys
import time
import warnings
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dill

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_runner import AddOne, TinySample

import datamultiproc
from datamultiproc.core import recording
from datamultiproc.execution import _plainstep
from datamultiproc.execution._codec import encode_pipeline
from datamultiproc.execution._copies import copy_sample
from datamultiproc.execution._inline import ParentRunner
from datamultiproc.execution._plainstep import run_plain_step

PIPELINE = AddOne()


def make(count: int) -> list[TinySample]:
    return [TinySample(id=f"t{i}", data=i) for i in range(count)]


def loop(samples: list[Any]) -> None:
    for sample in samples:
        PIPELINE(sample)


def process_only(samples: list[Any]) -> None:
    for sample in samples:
        PIPELINE.process(sample)


def describe(samples: list[Any]) -> None:
    for _ in samples:
        PIPELINE.describe_params()


def copies(samples: list[Any]) -> None:
    for sample in samples:
        copy_sample(sample)


def step_recorded(samples: list[Any]) -> None:
    step = PIPELINE._run_step
    with recording({}) as recorder:
        for sample in samples:
            recorder.records = []
            step(sample, ())


def plain_step_uncopied(samples: list[Any]) -> None:
    # run_plain_step with the copy left out: the step, its records and outcomes.
    _plainstep.copy_sample = _uncopied  # type: ignore[attr-defined]
    try:
        with recording({}) as recorder:
            run_plain_step(PIPELINE, list(enumerate(samples)), recorder, "parent", math.inf)
    finally:
        _plainstep.copy_sample = copy_sample  # type: ignore[attr-defined]


def _uncopied(sample: Any) -> Any:
    return sample


def inline_path(samples: list[Any]) -> None:
    runner = ParentRunner(*encode_pipeline(PIPELINE))
    runner.prepare()
    runner.run(list(enumerate(samples)))
    runner.release(keep=False)


PARTS: dict[str, Callable[[list[Any]], None]] = {
    "plain loop: pipeline(sample)": loop,
    "  process() alone": process_only,
    "  describe_params() (history text)": describe,
    "inline path: ParentRunner.run": inline_path,
    "  copy_sample": copies,
    "  the rest of run_plain_step (step, records, outcome)": plain_step_uncopied,
    "a step under a recorder (with a Cache or Save; not W1)": step_recorded,
}


# (start, end) of every ParentRunner.run call in the timed warm run.
laps: list[tuple[float, float]] = []
_run = ParentRunner.run


def _timed_run(self: ParentRunner, *args: Any, **kwargs: Any) -> Any:
    lap = time.perf_counter()
    try:
        return _run(self, *args, **kwargs)
    finally:
        laps.append((lap, time.perf_counter()))


def _phases(started: float, ended: float) -> dict[str, float]:
    """The warm run's wall time split around its inline chunks, in seconds."""
    if not laps:
        return {}
    inline = sum(end - start for start, end in laps)
    return {
        "  until the first inline chunk (workers only), wall": laps[0][0] - started,
        "  in inline chunks (ParentRunner.run), wall": inline,
        "  between inline chunks, wall": laps[-1][1] - laps[0][0] - inline,
        "  after the last inline chunk, wall": ended - laps[-1][1],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 samples, 3 repeats")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=dill.PicklingWarning)
    count, repeats = (2_000, 3) if args.quick else (20_000, 9)
    per_sample: dict[str, list[float]] = defaultdict(list)
    datamultiproc.run(PIPELINE, make(4), workers=2, progress=False)  # start the workers
    ParentRunner.run = _timed_run  # type: ignore[method-assign]
    for _ in range(repeats):
        gc.disable()
        for name, part in PARTS.items():
            samples = make(count)
            started = time.thread_time()
            part(samples)
            per_sample[name].append((time.thread_time() - started) / count * 1e6)
        gc.enable()
        samples = make(count)
        started = time.perf_counter()
        loop(samples)
        per_sample["plain loop, wall (collector on)"].append(
            (time.perf_counter() - started) / count * 1e6
        )
        samples = make(count)
        laps.clear()
        started, cpu = time.perf_counter(), time.process_time()
        result = datamultiproc.run(PIPELINE, samples, workers=2, progress=False)
        ended = time.perf_counter()
        per_sample["datamultiproc.run (warm), wall"].append((ended - started) / count * 1e6)
        per_sample["datamultiproc.run (warm), parent CPU"].append(
            (time.process_time() - cpu) / count * 1e6
        )
        for name, seconds in _phases(started, ended).items():
            per_sample[name].append(seconds / count * 1e6)
        del result, samples
    print(f"W1, {count:,} samples, medians of {repeats}, µs per sample\n")
    print("| part | µs |\n|---|---:|")
    for name, values in per_sample.items():
        print(f"| {name} | {statistics.median(values):.2f} |")


if __name__ == "__main__":
    main()
