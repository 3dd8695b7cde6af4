"""Where the time of issue 13's W3 goes: large arrays through worker processes.

W3 is 60 samples, each a 4 MiB float64 array, through ``(a - a.mean()) / a.std()``
(see ``bench_runner.py``). Two tables:

1. *Parts on one core*: the thread CPU time of each part of one sample's trip, done
   in this process one after the other (the parent's and a worker's parts), against
   the plain loop's work on the same array; for both ways an input travels: as a
   memory file the parent writes ("files"), or read by the worker straight from the
   parent's memory ("remote", the default where the kernel allows it).
2. *Whole runs*: the wall time of a plain loop and of warm ``datamultiproc.run``
   (with and without the parent taking part, and with inputs as files), and the CPU
   time per sample of the parent and of the workers (from ``/proc``), side by side in
   one process; and, as the ceiling any pool of two processes could reach, two plain
   loops running at once in two processes, each on its own half of the samples (nothing
   moves between processes).

Linux only (memory files, ``/proc``). Prints Markdown tables of medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import multiprocess
import numpy as np

import datamultiproc
from datamultiproc.execution import _remote as remote_reads
from datamultiproc.execution import _transport as transport
from datamultiproc.execution._heap import keep_freed_memory
from datamultiproc.execution._multiprocess import MultiprocessBackend
from datamultiproc.execution._pool import _ALL, shutdown_pools

sys.path.insert(0, os.path.dirname(__file__))
from bench_runner import WORKLOADS

SIZE = 1 << 19  # float64 elements: 4 MiB
_TICK = os.sysconf("SC_CLK_TCK")


def standardize(a: np.ndarray) -> np.ndarray:
    return (a - a.mean()) / a.std()  # type: ignore[no-any-return]


def parts_on_one_core(count: int) -> dict[str, list[float]]:
    """Thread CPU seconds of each part of a sample's trip, run in this process.

    Everything runs twice and only the second pass counts: memory this process has
    never used costs more (on a VM, far more) than memory it used and freed.
    """
    times: dict[str, list[float]] = {}

    def timed(name: str, part: Callable[[], Any]) -> Any:
        started = time.thread_time()
        value = part()
        times.setdefault(name, []).append(time.thread_time() - started)
        return value

    for _ in range(2):
        times.clear()
        inputs = [np.arange(SIZE, dtype=np.float64) * (i + 1) for i in range(count)]
        kept = [
            timed("plain loop: the computation (result kept)", partial(standardize, a))
            for a in inputs
        ]
        del kept
        results = [_trip(array, timed) for array in inputs]
        del results
        if remote_reads.remote_read_available():
            results = [_remote_trip(array, timed) for array in inputs]
        del inputs, results
    return times


def _trip(array: np.ndarray, timed: Callable[[str, Callable[[], Any]], Any]) -> Any:
    """Inputs as memory files (where a worker may not read the parent's memory)."""
    fd = timed(
        "files: parent copies the input into a new memory file", partial(transport.share, array)
    )
    recycler = transport.Recycler()
    buffer = timed("files: worker maps the input", partial(recycler.map, fd, SIZE * 8))
    mapped = np.frombuffer(buffer, dtype=np.float64)
    result = timed("files: worker computes", partial(standardize, mapped))
    del mapped, buffer
    fd = timed(
        "files: worker copies the result into the input's file", partial(recycler.share, result)
    )
    recycler.close()
    del result
    return timed("files: parent maps the result", partial(transport.map_shared, fd, SIZE * 8))


def _remote_trip(array: np.ndarray, timed: Callable[[str, Callable[[], Any]], Any]) -> Any:
    """Inputs read from the parent's memory (the default where the kernel allows it)."""
    address = array.__array_interface__["data"][0]
    read = partial(remote_reads.read_remote, os.getpid(), address, SIZE * 8)
    copy = timed("remote: worker reads the input from the parent", read)
    result = timed("remote: worker computes", partial(standardize, copy.view(np.float64)))
    del copy
    fd = timed(
        "remote: worker copies the result into a new memory file", partial(transport.share, result)
    )
    del result
    return timed("remote: parent maps the result", partial(transport.map_shared, fd, SIZE * 8))


def _cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def whole_runs(repeats: int) -> list[tuple[str, float, float, float]]:
    """(contender, wall seconds, parent CPU s per sample, workers' CPU s per sample), medians."""
    make, pipeline, count, _ = WORKLOADS["W3"]
    rows = []
    contenders = [
        ("plain loop", None, True),
        ("run, workers only, inputs as files", False, False),
        ("run, workers only", False, True),
        ("run", True, True),
    ]
    remote_read_available = remote_reads.remote_read_available
    for name, inline, remote in contenders:
        shutdown_pools()
        # A pool decides when it starts whether its workers read the parent's memory.
        remote_reads.remote_read_available = remote_read_available if remote else lambda: False
        if inline is not None:
            datamultiproc.run(
                pipeline, make(4), backend=MultiprocessBackend(2, inline=inline), progress=False
            )
        pids = [w.process.pid for pool in _ALL for w in pool.live()]
        walls, parents, workers = [], [], []
        for _ in range(repeats):
            samples = make(count)
            before = sum(_cpu(pid) for pid in pids)
            cpu, started = time.process_time(), time.perf_counter()
            if inline is None:
                out = [pipeline(sample) for sample in samples]
            else:
                backend = MultiprocessBackend(2, inline=inline)
                out = datamultiproc.run(pipeline, samples, backend=backend, progress=False).samples
            walls.append(time.perf_counter() - started)
            parents.append((time.process_time() - cpu) / count)
            workers.append((sum(_cpu(pid) for pid in pids) - before) / count)
            assert len(out) == count
            del samples, out
        rows.append(
            (name, statistics.median(walls), statistics.median(parents), statistics.median(workers))
        )
    shutdown_pools()
    remote_reads.remote_read_available = remote_read_available
    halves = [_two_loops_at_once(count) for _ in range(repeats)]
    rows.append(("two plain loops at once, half the samples each", statistics.median(halves), 0, 0))
    return rows


def _two_loops_at_once(count: int) -> float:
    """Wall seconds until both of two processes ran the plain loop over ``count / 2`` samples.

    Each process makes its own inputs and runs the loop once untimed first (memory used
    and freed before, as in a warm worker); then both start at once.
    """
    context = multiprocess.get_context("fork")
    ready, times = context.Barrier(3), context.Queue()
    processes = [
        context.Process(target=_half_loop, args=(count // 2, ready, times)) for _ in range(2)
    ]
    for process in processes:
        process.start()
    ready.wait()
    started = time.perf_counter()
    for _ in processes:
        times.get()
    wall = time.perf_counter() - started
    for process in processes:
        process.join()
    return wall


def _half_loop(count: int, ready: Any, times: Any) -> None:
    make, pipeline, _, _ = WORKLOADS["W3"]
    kept = [pipeline(sample) for sample in make(count)]  # warm: memory used and freed
    del kept
    samples = make(count)
    ready.wait()
    kept = [pipeline(sample) for sample in samples]
    times.put(len(kept))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="whole runs per contender")
    args = parser.parse_args(argv)
    print("Parts on one core: thread CPU per 4 MiB sample, medians of 60 (after a first pass)\n")
    print("| part | ms |")
    print("|---|---:|")
    keep_freed_memory()  # as in a worker; the loop's result is kept, so this changes nothing for it
    for name, values in parts_on_one_core(60).items():
        print(f"| {name} | {statistics.median(values) * 1e3:.2f} |")
    print(f"\nWhole runs of W3 (60 samples, 2 workers, warm), medians of {args.repeats}\n")
    print(
        "| contender | seconds | MiB/s | vs loop | parent CPU ms/sample | workers' CPU ms/sample |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    rows = whole_runs(args.repeats)
    loop = rows[0][1]
    for name, wall, parent, workers in rows:
        cpu = f"| {parent * 1e3:.2f} | {workers * 1e3:.2f} |" if parent else "| | |"
        print(f"| {name} | {wall:.3f} | {60 * 4 / wall:,.0f} | {loop / wall:.2f}x {cpu}")


if __name__ == "__main__":
    main()
