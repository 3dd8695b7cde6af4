"""Opening a Save folder: ``load_saved`` on 100,000 files, against listing it by hand.

Run from the repository root::

    python benchmarks/bench_saved.py            # 100,000 files, 5 repeats
    python benchmarks/bench_saved.py --quick    # 10,000 files, 3 repeats

A Save step writes the files (tiny samples) into a temporary folder first, outside
the timing. Then: ``load_saved(folder)`` (one ``scandir`` plus the configuration
records; no file is read), the same with ``configuration="all"``, a plain
``sorted(folder.glob("*.pickle"))`` for scale, and reading every sample back into
a DataFrame with ``load_saved(folder).to_frame()`` against the hand-written
``glob`` + ``read_file`` loop + ``pd.DataFrame``. Prints a Markdown table of medians.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd  # noqa: TID251 (a benchmark of the pandas tables)

from datamultiproc import BaseSample, Save, load_saved


class Tiny(BaseSample):
    data: int
    name: str


def median_seconds(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def by_hand(stage: Path) -> pd.DataFrame:
    rows = [Tiny.read_file(path).model_dump() for path in sorted(stage.glob("*.pickle"))]
    return pd.DataFrame(rows).drop(columns="processing_history").set_index("id")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    count, repeats = (10_000, 3) if args.quick else (100_000, 5)
    root = Path(tempfile.mkdtemp(prefix="bench-saved-"))
    try:
        save = Save(save_to_dir=root)
        started = time.perf_counter()
        for i in range(count):
            save(Tiny(id=f"s{i:06d}", data=i, name="x", processing_history=[("Load", "")]))
        write = time.perf_counter() - started
        stage = root / "Load"
        contenders: dict[str, Callable[[], Any]] = {
            'sorted(folder.glob("*.pickle")) (no records, no ids)': lambda: sorted(
                stage.glob("*.pickle")
            ),
            "load_saved(folder)": lambda: load_saved(root),
            'load_saved(folder, configuration="all")': lambda: load_saved(
                root, configuration="all"
            ),
            "load_saved(folder).to_frame() (reads every file)": lambda: load_saved(root).to_frame(),
            "by hand: glob + read_file + DataFrame": lambda: by_hand(stage),
        }
        print(f"{count:,} files (written by Save in {write:.1f} s), median of {repeats}\n")
        print("| contender | seconds |")
        print("|---|---:|")
        for name, fn in contenders.items():
            print(f"| {name} | {median_seconds(fn, repeats):.3f} |")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
