"""The Dask backend on a local cluster, beside the process backend (issue 6).

Run from the repository root::

    python benchmarks/bench_dask.py            # full workloads, 3 repeats
    python benchmarks/bench_dask.py --quick    # a tenth of the samples, 1 repeat

Workloads W1 (20,000 tiny samples) and W2 (1,000 samples of 2 ms CPU each) come from
``bench_runner.py``. The cluster is a ``LocalCluster`` with one single-threaded worker
process per usable core, on loopback; its start-up is timed once and reported on its
own line, since a notebook user starts a cluster once and then runs many pipelines.
"first" is the first run of a pipeline on the cluster (it ships the pipeline and runs
``setup()`` in each worker); "warm" is the median of the runs after it, and lines under
the table give its ratio to the process backend's default (tiny samples run in the
calling process on both) and to the process backend with every sample in a worker, and
its CPU time per sample in this process and in the Dask workers. The warm contenders
run in rounds (each once per round, in turn), so that load from other programs falls on
all of them alike.
"client.map" is plain Dask with one task per sample, the floor an unchunked design would
pay.
Prints a Markdown table of medians.
"""

from __future__ import annotations

import argparse
import logging
import resource
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import datamultiproc
from datamultiproc.execution import MultiprocessBackend
from datamultiproc.execution._job import usable_cores

try:  # the runner benchmark's workloads, when run from the repository root
    from bench_runner import WORKLOADS
except ImportError:
    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    from bench_runner import WORKLOADS

Runner = Callable[[Any, list[Any]], list[Any]]


def timed(runner: Runner, pipeline: Any, make: Callable[[int], list[Any]], count: int) -> float:
    samples = make(count)
    started = time.perf_counter()
    out = runner(pipeline, samples)
    seconds = time.perf_counter() - started
    assert len(out) == count, (len(out), count)
    return seconds


def process_cpu() -> float:
    """CPU seconds (user and system) this process has used so far, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_timed(
    client: Any, runner: Runner, pipeline: Any, make: Callable[[int], list[Any]], count: int
) -> tuple[float, float, float]:
    """Return wall seconds, this process's CPU seconds and the Dask workers' CPU seconds."""
    samples = make(count)
    workers = sum(client.run(process_cpu).values())
    cpu, started = process_cpu(), time.perf_counter()
    out = runner(pipeline, samples)
    seconds, cpu = time.perf_counter() - started, process_cpu() - cpu
    workers = sum(client.run(process_cpu).values()) - workers
    assert len(out) == count, (len(out), count)
    return seconds, cpu, workers


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the samples, 1 repeat")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--workloads", default="W1,W2")
    args = parser.parse_args(argv)
    scale = 0.1 if args.quick else 1.0
    repeats = args.repeats or (1 if args.quick else 3)
    workers = usable_cores()

    from distributed import Client, LocalCluster

    started = time.perf_counter()
    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    client = Client(cluster)
    startup = time.perf_counter() - started
    print(
        f"{workers} Dask workers (processes, 1 thread each) on a LocalCluster, "
        f"Python {'.'.join(map(str, sys.version_info[:3]))}, medians of {repeats}\n"
    )
    print(f"cluster start-up (LocalCluster + Client): {startup:.2f} s, not included below\n")

    def on_processes(pipeline: Any, samples: list[Any]) -> list[Any]:
        return datamultiproc.run(pipeline, samples, workers=workers, progress=False).samples

    def on_worker_processes(pipeline: Any, samples: list[Any]) -> list[Any]:
        # Every sample in a worker, as on Dask (the default lets the parent run tiny ones).
        backend = MultiprocessBackend(workers, inline=False)
        return datamultiproc.run(pipeline, samples, backend=backend, progress=False).samples

    def on_dask(pipeline: Any, samples: list[Any]) -> list[Any]:
        return datamultiproc.run(pipeline, samples, backend=client, progress=False).samples

    def client_map(pipeline: Any, samples: list[Any]) -> list[Any]:
        return client.gather(client.map(pipeline, samples, pure=False))

    def plain(pipeline: Any, samples: list[Any]) -> list[Any]:
        return [pipeline(sample) for sample in samples]

    notes: list[str] = []
    print("| workload | contender | seconds | per sample | throughput |")
    print("|---|---|---:|---:|---:|")
    for workload in args.workloads.split(","):
        make, pipeline, count, _ = WORKLOADS[workload]
        count = max(1, int(count * scale))
        on_processes(pipeline, make(2 * workers))  # warm the process pool
        on_worker_processes(pipeline, make(2 * workers))  # and the workers-only one
        first = timed(on_dask, pipeline, make, count)
        # One round runs every contender once, in turn: a busy moment of the machine
        # then weighs on all of them, not on one contender's repeats.
        rounds: dict[str, list[float]] = {"loop": [], "process": [], "workers": []}
        warm: list[tuple[float, float, float]] = []
        for _ in range(repeats):
            rounds["loop"].append(timed(plain, pipeline, make, count))
            rounds["process"].append(timed(on_processes, pipeline, make, count))
            rounds["workers"].append(timed(on_worker_processes, pipeline, make, count))
            warm.append(cpu_timed(client, on_dask, pipeline, make, count))
        loop = statistics.median(rounds["loop"])
        dask_warm = statistics.median(w[0] for w in warm)
        rows: list[tuple[str, float, int]] = [
            ("plain loop", loop, count),
            ("datamultiproc.run, process (warm)", statistics.median(rounds["process"]), count),
            (
                "datamultiproc.run, process, workers only (warm)",
                statistics.median(rounds["workers"]),
                count,
            ),
            ("datamultiproc.run, dask (first)", first, count),
            ("datamultiproc.run, dask (warm)", dask_warm, count),
        ]
        by_round = [
            (w[0] / p, w[0] / o)
            for w, p, o in zip(warm, rounds["process"], rounds["workers"], strict=True)
        ]
        notes.append(
            f"{workload} dask (warm) against the process backend (warm): "
            f"{dask_warm / rows[1][1]:.2f}x its default, {dask_warm / rows[2][1]:.2f}x "
            "workers only (ratio of medians); median of the rounds' ratios "
            f"{statistics.median(r[0] for r in by_round):.2f}x and "
            f"{statistics.median(r[1] for r in by_round):.2f}x"
        )
        notes.append(
            f"{workload} dask (warm), CPU per sample: client process "
            f"{statistics.median(w[1] for w in warm) / count * 1e6:.1f} µs (it also hosts the "
            f"LocalCluster's scheduler), Dask workers together "
            f"{statistics.median(w[2] for w in warm) / count * 1e6:.1f} µs"
        )
        mapped = count if workload != "W1" else count // 10  # one task per sample is slow
        rows.append(
            (
                f"client.map, one task per sample ({mapped:,} samples)",
                statistics.median(
                    timed(client_map, pipeline, make, mapped) for _ in range(repeats)
                ),
                mapped,
            )
        )
        for name, seconds, n in rows:
            if workload == "W2":
                speedup = loop * n / count / seconds
                throughput = f"{speedup:.2f}x ({speedup / workers:.0%} of ideal)"
            else:
                throughput = f"{n / seconds:,.0f} /s"
            print(
                f"| {workload} | {name} | {seconds:.2f} | {seconds / n * 1e6:,.0f} µs | {throughput} |",
                flush=True,
            )
    print()
    for note in notes:
        print(note)
    client.close()
    cluster.close()


if __name__ == "__main__":
    main()
