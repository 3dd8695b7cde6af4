"""The parallel runner against the usual ways of running a pipeline in parallel.

Run from the repository root::

    python benchmarks/bench_runner.py            # full workloads, 3 repeats
    python benchmarks/bench_runner.py --quick    # a tenth of the samples, 1 repeat

Workloads (issue 13): W1 20,000 tiny samples through a trivial step (per-sample
overhead); W2 1,000 samples of 2 ms CPU each (parallel efficiency); W3 60 samples
carrying a 4 MiB float64 array each through ``(a - a.mean()) / a.std()`` (transfer
cost: the result is a new 4 MiB array that must come back too). Every contender gets
fresh samples and must hand the processed samples back to the caller. "plain loop on
copies" runs the loop on a copy of each sample (the copy ``run`` makes when it runs a
sample in-process), so the caller's samples stay unchanged, as with ``run``. "cold"
includes starting the workers; "warm" reuses workers started by an earlier run of the
same workload in the same interpreter (what rerunning a notebook cell gets).
Contenders are timed in rounds, each round running every contender once in a rotating
order, so a drift of the machine or of the heap hits them all alike.
Prints a Markdown table of medians.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import multiprocessing
import queue
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import dill
import multiprocess
import numpy as np

import datamultiproc
from datamultiproc import BaseSample, Processor
from datamultiproc.execution._copies import copy_sample
from datamultiproc.execution._job import usable_cores
from datamultiproc.execution._pool import shutdown_pools


class TinySample(BaseSample):
    data: int


class ArraySample(BaseSample):
    array: np.ndarray
    total: float | None = None


class AddOne(Processor):
    def process(self, sample: TinySample) -> TinySample:
        sample.data = sample.data + 1
        return sample


class Burn(Processor):
    seconds: float = 0.002

    def process(self, sample: TinySample) -> TinySample:
        end = time.thread_time() + self.seconds  # CPU time, not wall time
        while time.thread_time() < end:
            pass
        sample.data = sample.data + 1
        return sample


class Standardize(Processor):
    def process(self, sample: ArraySample) -> ArraySample:
        a = sample.array
        sample.array = (a - a.mean()) / a.std()
        return sample


WORKLOADS: dict[str, tuple[Callable[[int], list[Any]], Processor, int, int]] = {
    # name: (make samples, pipeline, count, a good chunksize for the pools)
    "W1": (lambda n: [TinySample(id=f"t{i}", data=i) for i in range(n)], AddOne(), 20_000, 1000),
    "W2": (lambda n: [TinySample(id=f"b{i}", data=i) for i in range(n)], Burn(), 1_000, 25),
    "W3": (
        lambda n: [
            ArraySample(id=f"a{i}", array=np.arange(1 << 19, dtype=np.float64) * (i + 1))
            for i in range(n)
        ],
        Standardize(),
        60,
        1,
    ),
}


def plain_loop(pipeline: Processor, samples: list[Any], workers: int, chunk: int) -> list[Any]:
    return [pipeline(sample) for sample in samples]


def plain_loop_on_copies(
    pipeline: Processor, samples: list[Any], workers: int, chunk: int
) -> list[Any]:
    # The loop with the runner's guarantee: the caller's samples stay as they were.
    return [pipeline(copy_sample(sample)) for sample in samples]


def _seed_worker(pipeline: Processor, tasks: Any, results: Any) -> None:
    # The design document's loop, returning results through a second queue. Its plain
    # tasks.get() hangs when two workers race for the last sample: time out instead.
    while not tasks.empty():
        try:
            sample = tasks.get(timeout=0.5)
        except queue.Empty:
            return
        results.put(pipeline(sample))


def seed_queue(pipeline: Processor, samples: list[Any], workers: int, chunk: int) -> list[Any]:
    tasks: Any = multiprocessing.Queue()
    results: Any = multiprocessing.Queue()
    for sample in samples:
        tasks.put(sample)
    processes = [
        multiprocessing.Process(target=_seed_worker, args=(pipeline, tasks, results))
        for _ in range(workers)
    ]
    for process in processes:
        process.start()
    out: list[Any] = []
    while len(out) < len(samples):
        try:
            out.append(results.get(timeout=0.2))
        except queue.Empty:
            if not any(process.is_alive() for process in processes):
                break  # samples lost to the empty() race
    for process in processes:
        process.join()
    for leftover in (tasks, results):  # lost samples must not block interpreter exit
        leftover.cancel_join_thread()
    return out


_POOLS: dict[str, Any] = {}


def _pool(kind: str, workers: int, warm: bool) -> Any:
    if warm and kind in _POOLS:
        return _POOLS[kind]
    pool = multiprocess.Pool(workers) if kind == "pool" else cf.ProcessPoolExecutor(workers)
    if warm:
        _POOLS[kind] = pool
    return pool


def _close(pool: Any, warm: bool) -> None:
    if warm:
        return
    if isinstance(pool, cf.Executor):
        pool.shutdown()
    else:
        pool.close()
        pool.join()


def close_pools() -> None:
    """Close the warm pools of the other contenders."""
    while _POOLS:
        _close(_POOLS.popitem()[1], False)


def pool_imap(warm: bool) -> Callable[..., list[Any]]:
    def run(pipeline: Processor, samples: list[Any], workers: int, chunk: int) -> list[Any]:
        pool = _pool("pool", workers, warm)
        out = list(pool.imap(pipeline, samples, chunksize=chunk))
        _close(pool, warm)
        return out

    return run


def process_pool_executor(warm: bool) -> Callable[..., list[Any]]:
    def run(pipeline: Processor, samples: list[Any], workers: int, chunk: int) -> list[Any]:
        pool = _pool("executor", workers, warm)
        out = list(pool.map(pipeline, samples, chunksize=chunk))
        _close(pool, warm)
        return out

    return run


def datamultiproc_run(warm: bool) -> Callable[..., list[Any]]:
    def run(pipeline: Processor, samples: list[Any], workers: int, chunk: int) -> list[Any]:
        result = datamultiproc.run(pipeline, samples, workers=workers, progress=False)
        if not warm:
            shutdown_pools()  # like closing the other pools: part of a cold run
        return result.samples

    return run


CONTENDERS: list[tuple[str, Callable[..., list[Any]]]] = [
    ("plain loop", plain_loop),
    ("plain loop on copies", plain_loop_on_copies),
    ("multiprocess.Pool.imap (cold)", pool_imap(False)),
    ("multiprocess.Pool.imap (warm)", pool_imap(True)),
    ("ProcessPoolExecutor.map (cold)", process_pool_executor(False)),
    ("ProcessPoolExecutor.map (warm)", process_pool_executor(True)),
    ("datamultiproc.run (cold)", datamultiproc_run(False)),
    ("datamultiproc.run (warm)", datamultiproc_run(True)),
]


def timed_once(
    name: str, contender: Callable[..., list[Any]], workload: str, scale: float
) -> tuple[float, int, int]:
    """One timed run of ``contender``: (seconds, samples, samples handed back).

    No other contender's processes stay alive meanwhile: while forked children live,
    every page the parent writes first is copied, which slows whatever runs then. A
    warm contender starts afresh too and first runs the whole workload untimed, as a
    notebook's earlier run of the same cell would (for ``run`` on tiny samples that run
    leaves no worker but the figures that send the next run to the parent at once).
    """
    make, pipeline, count, chunk = WORKLOADS[workload]
    count = max(1, int(count * scale))
    workers = usable_cores()
    chunk = max(1, int(chunk * min(1.0, scale * 4)))
    shutdown_pools()
    close_pools()
    if "(warm)" in name:
        contender(pipeline, make(count), workers, chunk)
    samples = make(count)
    started = time.perf_counter()
    out = contender(pipeline, samples, workers, chunk)
    seconds = time.perf_counter() - started
    return seconds, count, len(out)


def measure_rounds(
    contenders: list[tuple[str, Callable[..., list[Any]]]],
    workload: str,
    scale: float,
    repeats: int,
) -> dict[str, tuple[float, int, int]]:
    """Median seconds per contender, timed in rounds: each round runs every contender once.

    The order rotates from round to round, so no contender always runs first in a
    fresh process (the loop's own time moves by up to 30 % with the state of the heap).
    """
    times: dict[str, list[float]] = {name: [] for name, _ in contenders}
    counts: dict[str, tuple[int, int]] = {}
    for round_number in range(repeats):
        shift = round_number % len(contenders)
        for name, contender in contenders[shift:] + contenders[:shift]:
            seconds, count, returned = timed_once(name, contender, workload, scale)
            times[name].append(seconds)
            done = counts.get(name, (count, returned))[1]
            counts[name] = (count, min(done, returned))
    shutdown_pools()
    close_pools()
    return {name: (statistics.median(times[name]), *counts[name]) for name, _ in contenders}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the samples, 1 repeat")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--workloads", default="W1,W2,W3")
    parser.add_argument(
        "--contenders", default="", help="comma-separated substrings of contender names"
    )
    parser.add_argument("--seed", action="store_true", help="also time the seed Process + Queue")
    args = parser.parse_args(argv)
    # dill warns for every class it pickles by value (the ones defined in this script).
    warnings.filterwarnings("ignore", category=dill.PicklingWarning)
    scale = 0.1 if args.quick else 1.0
    repeats = args.repeats or (1 if args.quick else 3)
    workers = usable_cores()
    print(
        f"{workers} workers, start method {multiprocess.get_start_method()}, "
        f"Python {'.'.join(map(str, sys.version_info[:3]))}, medians of {repeats}\n"
    )
    contenders = list(CONTENDERS)
    if args.seed:
        contenders.insert(1, ("seed Process + Queue (cold)", seed_queue))
    wanted = [part for part in args.contenders.split(",") if part]
    if wanted:
        contenders = [
            c for c in contenders if c[0] == "plain loop" or any(w in c[0] for w in wanted)
        ]
    print("| workload | contender | seconds | per sample | throughput | vs loop | returned |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for workload in args.workloads.split(","):
        measured = measure_rounds(contenders, workload, scale, repeats)
        baseline = measured["plain loop"][0]
        for name, _ in contenders:
            seconds, count, returned = measured[name]
            # Throughput counts only the samples handed back (the seed pattern loses some).
            if workload == "W3":
                throughput = f"{returned * 4 / seconds:.0f} MiB/s"
            elif workload == "W2":
                speedup = baseline / seconds * returned / count
                throughput = f"{speedup:.2f}x ({speedup / workers:.0%} of ideal)"
            else:
                throughput = f"{returned / seconds:,.0f} /s"
            print(
                f"| {workload} | {name} | {seconds:.2f} | {seconds / count * 1e6:,.0f} µs "
                f"| {throughput} | {baseline / seconds * returned / count:.2f}x "
                f"| {returned}/{count} |",
                flush=True,
            )
    close_pools()


if __name__ == "__main__":
    main()
