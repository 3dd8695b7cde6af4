"""The parent's peak memory over long and large inputs through ``imap``.

Run from the repository root::

    python benchmarks/bench_memory.py            # 200,000 and 2,000,000 samples, 3 repeats; ~15 minutes
    python benchmarks/bench_memory.py --quick    # a tenth of the samples, 1 repeat

Each measurement runs in a fresh interpreter (peak RSS only grows): it warms a pool of
two fork workers with a short run, notes its peak RSS, runs ``imap`` over a generator
and reports how far the peak rose (median and largest of the repeats). Rows:

- tiny samples at two input lengths (a long generator must run in flat memory);
- the same through a ``Cache`` step (its repeated-id check must not grow either);
- 200 kB numpy samples at 600 and 3,000 (a chunk's size cap counts array buffers, and
  the input is not read ahead);
- a consumer that pauses for two seconds half-way: how many samples the input gave
  meanwhile (none: ``imap`` reads input only as results are consumed).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = textwrap.dedent(
    """
    import json, resource, sys, time
    import numpy as np
    from datamultiproc import BaseSample, Cache, Processor

    class Tiny(BaseSample):
        data: int

    class Large(BaseSample):
        array: np.ndarray

    class AddOne(Processor):
        def process(self, sample):
            if isinstance(sample, Tiny):
                sample.data += 1
            return sample

    kind, count, cache_dir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    read = [0]

    def samples(n, prefix):
        for index in range(n):
            read[0] += 1
            if kind == "arrays":
                yield Large(id=f"{prefix}{index}", array=np.ones(25_000))  # 200 kB
            else:
                yield Tiny(id=f"{prefix}{index}", data=index)

    step = Cache(processor=AddOne(), cache_dir=cache_dir) if kind == "cache" else AddOne()
    def peak():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    warm_up = 50 if kind == "arrays" else 2_000
    for _ in step.imap(samples(warm_up, "w"), workers=2, start_method="fork", progress=False):
        pass
    before, started, seen, read_while_paused = peak(), time.perf_counter(), 0, None
    for sample in step.imap(samples(count, "m"), workers=2, start_method="fork", progress=False):
        seen += 1
        if kind == "pause" and seen == count // 2:
            mark = read[0]
            time.sleep(2)
            read_while_paused = read[0] - mark
    print(json.dumps({"seen": seen, "growth_mib": peak() - before, "before_mib": before,
                      "seconds": time.perf_counter() - started, "paused": read_while_paused}))
    """
)


def measure(kind: str, count: int) -> dict[str, float]:
    """Run one measurement in a fresh interpreter."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as cache_dir:
        completed = subprocess.run(
            [sys.executable, "-c", CHILD, kind, str(count), cache_dir],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=1800,
        )
    out: dict[str, float] = json.loads(completed.stdout.strip().splitlines()[-1])
    assert out["seen"] == count, out
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the samples, 1 repeat")
    args = parser.parse_args()
    scale, repeats = (10, 1) if args.quick else (1, 3)
    rows = [
        ("tiny samples", "numbers", 200_000 // scale),
        ("tiny samples", "numbers", 2_000_000 // scale),
        ("tiny samples through a Cache", "cache", 20_000 // scale),
        ("tiny samples through a Cache", "cache", 200_000 // scale),
        ("200 kB numpy samples", "arrays", 600),
        ("200 kB numpy samples", "arrays", 3_000),
        ("tiny samples, consumer pauses 2 s half-way", "pause", 200_000 // scale),
    ]
    print(
        "| input (imap, 2 fork workers, warm pool) | samples "
        "| peak RSS growth MiB, median | largest | seconds, median | read while paused |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for label, kind, count in rows:
        runs = [measure(kind, count) for _ in range(repeats)]
        growth = [run["growth_mib"] for run in runs]
        seconds = statistics.median(run["seconds"] for run in runs)
        paused = "" if kind != "pause" else f"{max(run['paused'] for run in runs):.0f}"
        print(
            f"| {label} | {count:,} | {statistics.median(growth):.1f} | {max(growth):.1f} "
            f"| {seconds:.1f} | {paused} |"
        )


if __name__ == "__main__":
    main()
