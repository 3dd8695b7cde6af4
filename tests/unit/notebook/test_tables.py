"""samples_frame and RunResult.to_frame: a row per sample, a column per field, right dtypes."""

from __future__ import annotations

from typing import cast

import numpy as np
import pandas as pd  # noqa: TID251 (tests read DataFrames)
import pytest
from pydantic import BaseModel

import datamultiproc
from datamultiproc import BaseSample, Compose, samples_frame
from tests.helpers import AddStep, FailOn, NumberSample, number_samples


class Extent(BaseModel):
    width: int
    height: int


class Rich(BaseSample):
    count: int
    maybe: int | None = None
    name: str
    flag: bool = False
    score: float = 0.0
    extent: Extent
    pixels: np.ndarray
    features: dict[str, float] = {}  # noqa: RUF012 (a pydantic field)


def rich(sample_id: str, count: int, **extra: object) -> Rich:
    fields: dict[str, object] = {
        "id": sample_id,
        "count": count,
        "name": f"n{count}",
        "extent": Extent(width=count, height=2),
        "pixels": np.arange(count + 1, dtype=np.float32),
        "features": {"mean": count / 2},
        **extra,
    }
    return Rich.model_validate(fields)


def test_one_row_per_sample_indexed_by_id_with_flattened_columns() -> None:
    samples = [rich("a", 1, maybe=5, processing_history=[("Load", "")]), rich("b", 2)]
    frame = samples_frame(samples)
    assert frame.index.tolist() == ["a", "b"]
    assert frame.index.name == "id"
    assert list(frame.columns) == [
        "count",
        "maybe",
        "name",
        "flag",
        "score",
        "extent.width",
        "extent.height",
        "pixels",
        "features.mean",
    ]
    assert frame.loc["a", "extent.width"] == 1
    assert frame.loc["b", "features.mean"] == 1.0
    assert cast(object, frame.loc["a", "pixels"]) is samples[0].pixels  # arrays stay cells


def test_integers_stay_integers_and_strings_stay_strings() -> None:
    frame = samples_frame([rich("a", 1, maybe=5), rich("b", 2)])
    assert frame["count"].dtype == "int64"
    assert frame["maybe"].dtype == "Int64"  # optional: nullable
    assert frame["maybe"].isna().tolist() == [False, True]
    assert frame["flag"].dtype == bool
    assert frame["score"].dtype == "float64"
    assert frame["extent.width"].dtype == "int64"
    assert pd.api.types.is_string_dtype(frame["name"])
    assert frame["pixels"].dtype == object


def test_arrays_summary_replaces_arrays_by_five_columns() -> None:
    frame = samples_frame([rich("a", 3)], arrays="summary")
    assert "pixels" not in frame.columns
    row = frame.loc["a"]
    assert row["pixels.shape"] == (4,)
    assert row["pixels.dtype"] == "float32"
    assert (row["pixels.min"], row["pixels.max"], row["pixels.mean"]) == (0.0, 3.0, 1.5)
    assert frame["pixels.mean"].dtype == "float64"


def test_empty_input_gives_the_class_columns() -> None:
    frame = samples_frame([], sample_class=Rich, arrays="summary")
    assert len(frame) == 0
    assert "count" in frame.columns
    assert "pixels.mean" in frame.columns
    assert "extent.height" in frame.columns
    assert frame["count"].dtype == "int64"
    assert frame["maybe"].dtype == "Int64"
    assert "processing_history" not in frame.columns
    assert samples_frame([]).index.name == "id"


def test_samples_frame_rejects_non_samples_and_bad_modes() -> None:
    with pytest.raises(TypeError, match="takes samples"):
        samples_frame([{"id": "a"}])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="arrays must be"):
        samples_frame([], arrays="mean")  # type: ignore[arg-type]


def test_result_to_frame_and_failures_that_merge_with_the_input_table() -> None:
    table = pd.DataFrame({"data": [0, 1, 2, 3]}, index=["s0", "s1", "s2", "s3"])
    samples = NumberSample.from_frame(table)
    pipeline = Compose([AddStep(step_size=10), FailOn(ids=["s1"])])
    with pytest.warns(datamultiproc.exceptions.FailuresWarning):
        result = datamultiproc.run(pipeline, samples, backend="sequential", progress=False)
    assert result.to_frame()["data"].tolist() == [10, 12, 13]
    frame = result.to_frame(include_failures=True)
    assert frame.index.tolist() == ["s0", "s1", "s2", "s3"]  # input order
    assert frame["status"].tolist() == ["ok", "failed", "ok", "ok"]
    assert frame.loc["s1", "error"] == "ValueError: bad sample s1"
    assert pd.isna(cast("str | None", frame.loc["s0", "error"]))
    assert frame["data"].dtype == "Int64"
    # pandas-stubs lacks the ``suffixes`` argument pandas 3 added to DataFrame.join.
    merged = table.join(frame, suffixes=("", "_out"))  # type: ignore[call-arg]
    assert merged.loc["s1", "status"] == "failed"
    assert merged["data_out"].tolist()[2] == 12


class StatusSample(datamultiproc.BaseSample):
    status: str = "raw"


def test_include_failures_refuses_to_hide_a_field_named_status() -> None:
    samples = [StatusSample(id="a"), StatusSample(id="b", status="cleaned")]
    result = datamultiproc.run(FailOn(ids=[]), samples, backend="sequential", progress=False)
    assert result.to_frame()["status"].tolist() == ["raw", "cleaned"]
    with pytest.raises(ValueError, match=r"already have 'status'.*failures_frame"):
        result.to_frame(include_failures=True)


def test_history_is_left_out_and_has_its_own_view() -> None:
    result = datamultiproc.run(AddStep(), number_samples(2), backend="sequential", progress=False)
    assert "processing_history" not in result.to_frame().columns
    assert len(result.history()) == 2
