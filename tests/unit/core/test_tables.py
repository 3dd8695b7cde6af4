"""BaseSample.from_frame and from_records: one sample per row, or one TableError."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pandas as pd  # noqa: TID251 (tests build DataFrames)
import pytest
from pydantic import BaseModel

from datamultiproc import BaseSample, TableError


class Tile(BaseSample):
    size: int
    label: str | None
    weight: float = 1.0
    pixels: np.ndarray | None = None


class Extent(BaseModel):
    width: int
    height: int


class Boxed(BaseSample):
    extent: Extent


def test_columns_become_fields_and_the_index_gives_string_ids() -> None:
    frame = pd.DataFrame({"size": [3, 4], "label": ["x", "y"]}, index=[10, 11])
    tiles = Tile.from_frame(frame)
    assert [(t.id, t.size, t.label, t.weight) for t in tiles] == [
        ("10", 3, "x", 1.0),
        ("11", 4, "y", 1.0),
    ]
    assert type(tiles[0].size) is int


def test_an_id_column_wins_over_the_index_and_a_named_column_works_too() -> None:
    frame = pd.DataFrame({"id": ["a", "b"], "size": [1, 2]}, index=[5, 6])
    assert [t.id for t in Tile.from_frame(frame)] == ["a", "b"]
    named = pd.DataFrame({"name": ["p", "q"], "size": [1, 2]})
    assert [t.id for t in Tile.from_frame(named, id_column="name")] == ["p", "q"]
    with pytest.raises(ValueError, match="id_column='nope'"):
        Tile.from_frame(named, id_column="nope")
    with pytest.raises(ValueError, match="'id' column and id_column='name'"):
        Tile.from_frame(named.assign(id=["x", "y"]), id_column="name")


def test_missing_cells_become_none_in_optional_fields_only() -> None:
    frame = pd.DataFrame(
        {"size": [1, 2, 3], "label": ["x", None, np.nan], "weight": [0.5, np.nan, 2.0]},
        index=["a", "b", "c"],
    )
    tiles = Tile.from_frame(frame)
    assert [t.label for t in tiles] == ["x", None, None]
    assert np.isnan(tiles[1].weight)  # a plain float field keeps NaN
    nullable = pd.DataFrame(
        {"size": pd.array([1, 2], dtype="Int64"), "label": pd.array(["x", pd.NA], dtype="string")}
    )
    assert [t.label for t in Tile.from_frame(nullable)] == ["x", None]


def test_numpy_cells_and_model_dicts_pass_through() -> None:
    pixels = np.arange(6).reshape(2, 3)
    frame = pd.DataFrame({"size": [1, 2], "label": ["x", "y"], "pixels": [pixels, None]})
    tiles = Tile.from_frame(frame)
    assert tiles[0].pixels is pixels
    assert tiles[1].pixels is None
    boxed = Boxed.from_frame(pd.DataFrame({"extent": [{"width": 2, "height": 3}]}))
    assert boxed[0].extent == Extent(width=2, height=3)


def test_wrong_types_give_one_error_naming_every_bad_row_and_field() -> None:
    frame = pd.DataFrame(
        {"size": [1, "big", 3, "huge"], "label": ["x", "y", 7, "z"]}, index=["a", "b", "c", "d"]
    )
    with pytest.raises(TableError) as caught:
        Tile.from_frame(frame)
    error = caught.value
    assert isinstance(error, ValueError)
    assert [(p.label, p.field) for p in error.problems] == [
        ("b", "size"),
        ("c", "label"),
        ("d", "size"),
    ]
    text = str(error)
    assert "cannot become Tile samples (4 rows)" in text
    assert "row 'b', field 'size': Input should be a valid integer" in text
    assert "row 'c', field 'label': Input should be a valid string" in text


def test_unknown_columns_are_named_or_ignored_when_asked() -> None:
    frame = pd.DataFrame({"size": [1], "label": ["x"], "colour": ["red"], "shade": [1]})
    with pytest.raises(
        TableError, match="columns that match no field: 'colour', 'shade'"
    ) as caught:
        Tile.from_frame(frame)
    assert caught.value.unknown_columns == ["colour", "shade"]
    assert "ignore_unknown=True" in str(caught.value)
    assert Tile.from_frame(frame, ignore_unknown=True)[0].size == 1


def test_missing_and_duplicate_ids_are_errors() -> None:
    frame = pd.DataFrame({"id": ["a", None, "a", "", "b", "b"], "size": range(6)})
    with pytest.raises(TableError) as caught:
        Tile.from_frame(frame)
    error = caught.value
    assert error.duplicate_ids == ["a", "b"]
    assert [(p.label, p.field) for p in error.problems] == [(1, "id"), (3, "id")]
    assert "ids on more than one row: 'a', 'b'" in str(error)
    assert "row 1, field 'id': missing id" in str(error)


def test_many_bad_rows_show_twenty_then_a_count() -> None:
    frame = pd.DataFrame({"size": ["x"] * 25, "label": ["l"] * 25})
    with pytest.raises(TableError) as caught:
        Tile.from_frame(frame)
    text = str(caught.value)
    assert len(caught.value.problems) == 25
    assert text.count("Input should be a valid integer") == 20
    assert "... and 5 more problem(s)" in text
    assert "25 invalid row(s)" in text


def test_a_table_error_survives_pickling() -> None:
    with pytest.raises(TableError) as caught:
        Tile.from_frame(pd.DataFrame({"size": ["x"], "label": ["y"]}))
    copy = pickle.loads(pickle.dumps(caught.value))
    assert str(copy) == str(caught.value)
    assert copy.problems == caught.value.problems


def test_from_frame_wants_a_dataframe_with_distinct_columns() -> None:
    with pytest.raises(TypeError, match="pandas DataFrame, not list"):
        Tile.from_frame([{"size": 1}])
    frame = pd.DataFrame([[1, 2]], columns=["size", "size"])
    with pytest.raises(ValueError, match="repeated column names"):
        Tile.from_frame(frame)


def test_an_empty_frame_gives_no_samples() -> None:
    assert Tile.from_frame(pd.DataFrame({"size": [], "label": []})) == []


def test_from_records_follows_the_same_rules() -> None:
    records: list[dict[str, Any]] = [
        {"id": 1, "size": 3, "label": float("nan")},
        {"id": "b", "size": 4},
    ]
    tiles = Tile.from_records(records)
    assert [(t.id, t.size, t.label) for t in tiles] == [("1", 3, None), ("b", 4, None)]
    assert [t.id for t in Tile.from_records([{"key": "k", "size": 1}], id_key="key")] == ["k"]
    with pytest.raises(TableError) as caught:
        Tile.from_records([{"id": "a", "size": "x", "other": 1}, {"size": 2}])
    error = caught.value
    assert error.unknown_columns == ["other"]
    assert [(p.label, p.field) for p in error.problems] == [(0, "size"), (1, "id")]
    assert Tile.from_records([{"id": "a", "size": 1, "other": 1}], ignore_unknown=True)[0].id == "a"
    with pytest.raises(TypeError, match="item 0 is a list"):
        Tile.from_records([["a", 1]])  # type: ignore[list-item]


def test_from_records_needs_no_pandas() -> None:
    import subprocess
    import sys

    code = (
        "import sys, datamultiproc as d\n"
        "class T(d.BaseSample):\n    x: int\n"
        "T.from_records([{'id': 'a', 'x': 1}])\n"
        "print('pandas' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
