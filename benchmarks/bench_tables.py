"""Samples from a DataFrame: ``from_frame``/``from_records`` against the plain loop.

Run from the repository root::

    python benchmarks/bench_tables.py            # 100,000 rows, 5 repeats
    python benchmarks/bench_tables.py --quick    # 10,000 rows, 3 repeats

Table: 100,000 rows of five scalar columns (int, float, str, optional str, bool);
the id comes from the index. The plain loop cannot read missing cells (pandas gives
NaN, which a ``str | None`` field rejects), so the main table has none; the last
rows time ``from_frame`` on the same table with 30% of ``note`` missing. The baseline is the loop a user writes
by hand, ``[Cls(**r) for r in df.to_dict("records")]`` (with the id column added
first, outside the timing). Also times ``samples_frame`` back to a DataFrame.
Prints a Markdown table of medians.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd  # noqa: TID251 (a benchmark of the pandas tables)

import datamultiproc
from datamultiproc import BaseSample


class Row(BaseSample):
    count: int
    value: float
    name: str
    note: str | None
    flag: bool


def make_frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    notes = np.where(rng.random(rows) < 0.3, "m", "n")
    return pd.DataFrame(
        {
            "count": rng.integers(0, 1000, rows),
            "value": rng.random(rows),
            "name": [f"name-{i % 97}" for i in range(rows)],
            "note": notes,
            "flag": rng.random(rows) < 0.5,
        },
        index=pd.Index([f"s{i:06d}" for i in range(rows)], name="id"),
    )


def median_seconds(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rows, repeats = (10_000, 3) if args.quick else (100_000, 5)
    frame = make_frame(rows)
    with_id = frame.reset_index()
    # pandas types the keys as Hashable; this frame's column names are all str.
    records: list[dict[str, Any]] = with_id.to_dict("records")  # type: ignore[assignment]
    samples = Row.from_frame(frame)
    gappy = frame.copy()
    gappy.loc[gappy["note"] == "m", "note"] = None
    contenders: dict[str, Callable[[], Any]] = {
        'loop: [Row(**r) for r in df.to_dict("records")]': lambda: [
            Row(**r)  # type: ignore[arg-type]
            for r in with_id.to_dict("records")
        ],
        "Row.from_frame(df)": lambda: Row.from_frame(frame),
        "loop over prepared dicts: [Row(**r) for r in records]": lambda: [
            Row(**r) for r in records
        ],
        "Row.from_records(records)": lambda: Row.from_records(records),
        "Row.from_frame(df), 30% of note missing": lambda: Row.from_frame(gappy),
        "samples_frame(samples) (back to a DataFrame)": lambda: datamultiproc.samples_frame(
            samples
        ),
    }
    results = {name: median_seconds(fn, repeats) for name, fn in contenders.items()}
    baseline = results['loop: [Row(**r) for r in df.to_dict("records")]']
    print(f"{rows:,} rows x 5 columns, median of {repeats}\n")
    print("| contender | seconds | vs loop |")
    print("|---|---:|---:|")
    for name, seconds in results.items():
        print(f"| {name} | {seconds:.3f} | {seconds / baseline:.2f}x |")


if __name__ == "__main__":
    main()
