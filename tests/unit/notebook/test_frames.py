from __future__ import annotations

import math
from typing import cast

import pandas as pd  # noqa: TID251 (tests of the notebook layer)
import pytest

import datamultiproc
from datamultiproc.core import BaseSample, FailureRecord, SampleRecord, StepRecord
from datamultiproc.execution import RunResult
from datamultiproc.notebook import history_frame
from tests.unit.notebook.records import cached_run

HISTORY_COLUMNS = [
    "sample_index",
    "sample_id",
    "step",
    "stage",
    "params",
    "seconds",
    "cache_hit",
    "reason",
    "worker",
    "status",
]


def test_history_has_one_row_per_sample_and_step() -> None:
    frame = cached_run().history()
    assert list(frame.columns) == HISTORY_COLUMNS
    assert frame.shape == (12, 10)
    assert list(frame["stage"].cat.categories) == ["Load", "Scale"]
    assert frame["seconds"].dtype == "float64"
    assert frame["cache_hit"].dtype == "boolean"
    assert frame["cache_hit"].tolist()[:4] == [True, pd.NA, False, pd.NA]
    assert frame["status"].tolist().count("failed") == 1
    assert list(frame["worker"].cat.categories) == ["process-0", "process-1"]
    assert frame.loc[3, "sample_id"] == "s1"
    assert frame.loc[3, "params"] == "k=2"


@pytest.mark.parametrize("view", ["history", "cache_stats", "timings", "failures_frame"])
def test_every_view_of_an_empty_run_is_empty_with_the_same_columns(view: str) -> None:
    empty = getattr(RunResult(), view)()
    full = getattr(cached_run(), view)()
    assert len(empty) == 0
    assert list(empty.columns) == list(full.columns)
    assert empty.dtypes.astype(str).tolist() == full.dtypes.astype(str).tolist()
    assert empty.index.name == full.index.name


def test_cache_stats_counts_hits_misses_bytes_and_seconds_saved() -> None:
    stats = cached_run().cache_stats()
    assert list(stats.index) == ["Load"]  # Scale was never cached
    row = stats.loc["Load"]
    assert (row["hits"], row["misses"], row["recomputed"]) == (3, 3, 1)
    assert row["hit_rate"] == 0.5
    assert (row["bytes_read"], row["bytes_written"]) == (300, 600)
    # 3 hits x 1.0 s mean miss time - 0.3 s spent loading
    assert row["seconds_saved"] == pytest.approx(2.7)


def test_cache_stats_cannot_estimate_savings_without_misses() -> None:
    step = StepRecord(0, "Load", "", 0.1, cache_hit=True)
    result: RunResult[BaseSample] = RunResult(records=[SampleRecord(0, "a", "w", "ok", (step,))])
    stats = result.cache_stats()
    assert stats.loc["Load", "hit_rate"] == 1.0
    assert math.isnan(cast(float, stats.loc["Load", "seconds_saved"]))


def test_timings_summarise_each_stage_in_pipeline_order() -> None:
    timings = cached_run().timings()
    assert list(timings.index) == ["Load", "Scale"]
    assert list(timings.columns) == [
        "count",
        "total_seconds",
        "mean_seconds",
        "median_seconds",
        "p95_seconds",
        "share",
    ]
    load = timings.loc["Load"]
    assert load["count"] == 6
    assert load["total_seconds"] == pytest.approx(3.3)
    assert load["median_seconds"] == pytest.approx(0.55)
    assert load["p95_seconds"] == pytest.approx(1.0)
    assert timings["share"].sum() == pytest.approx(1.0)
    assert timings.loc["Scale", "share"] == pytest.approx(3.0 / 6.3)


def test_failures_frame_keeps_the_traceback_and_allows_no_stage() -> None:
    result = cached_run()
    result.failures.append(
        FailureRecord(
            6,
            "s6",
            None,
            "WorkerLostError",
            "worker died",
            "worker died (signal SIGKILL)",
            "process-0",
        )
    )
    frame = result.failures_frame()
    assert frame["sample_id"].tolist() == ["s5", "s6"]
    assert cast(str, frame.loc[0, "traceback"]).startswith("Traceback")
    assert pd.isna(cast("float | None", frame.loc[1, "stage"]))
    assert list(frame["error_type"].cat.categories) == ["ValueError", "WorkerLostError"]


def test_history_frame_reads_processing_history_alone() -> None:
    samples = [
        BaseSample(id="a", processing_history=[("Load", ""), ("Scale", "k=2")]),
        BaseSample(id="b"),
        BaseSample(id="c", processing_history=[("Load", "")]),
    ]
    frame = datamultiproc.history_frame(samples)
    assert list(frame.columns) == ["sample_id", "step", "stage", "params"]
    assert frame["sample_id"].tolist() == ["a", "a", "c"]
    assert frame["step"].tolist() == [0, 1, 0]
    assert frame["stage"].dtype == "category"
    assert history_frame(iter([])).shape == (0, 4)


def test_history_frame_rejects_other_items() -> None:
    with pytest.raises(TypeError, match="takes samples, got a dict"):
        history_frame([{"id": "a"}])  # type: ignore[list-item]
