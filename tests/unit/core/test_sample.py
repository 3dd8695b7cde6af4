from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from datamultiproc import BaseSample, StorageError
from tests.helpers import ArraySample, NumberSample


class OptionalFields(BaseSample):
    plain: int | None
    pipe: str | None
    union: float | None
    required: int


def test_id_is_required() -> None:
    with pytest.raises(ValidationError, match="id"):
        NumberSample(data=1)  # type: ignore[call-arg]


def test_optional_fields_without_default_start_as_none() -> None:
    # BaseSample gives an Optional field without a default None; the pydantic plugin cannot know.
    sample = OptionalFields(id="a", required=1)  # type: ignore[call-arg]
    assert (sample.plain, sample.pipe, sample.union) == (None, None, None)


def test_non_optional_fields_stay_required() -> None:
    with pytest.raises(ValidationError, match="required"):
        OptionalFields(id="a")  # type: ignore[call-arg]


def test_history_is_not_shared_between_instances() -> None:
    first, second = NumberSample(id="a", data=1), NumberSample(id="b", data=2)
    first.processing_history.append(("Step", ""))
    assert second.processing_history == []


def test_assignment_is_validated() -> None:
    sample = NumberSample(id="a", data=1)
    with pytest.raises(ValidationError):
        sample.data = "not a number"  # type: ignore[assignment]


def test_numpy_fields_compare_by_content() -> None:
    left = ArraySample(id="a", array=np.arange(4.0))
    assert left == ArraySample(id="a", array=np.arange(4.0))
    assert left != ArraySample(id="a", array=np.arange(4.0) + 1)
    assert left != ArraySample(id="a", array=np.arange(4))  # dtype differs


def test_samples_of_different_classes_are_not_equal() -> None:
    assert NumberSample(id="a", data=1) != OptionalFields(id="a", required=1)  # type: ignore[call-arg]


@pytest.mark.parametrize("suffix", [".pkl", ".pickle"])
def test_write_and_read_round_trip(tmp_path: Path, suffix: str) -> None:
    sample = ArraySample(id="a", data=3, array=np.random.default_rng(0).normal(size=(3, 4)))
    sample.processing_history.append(("Step", "x=1"))
    path = sample.write_file(tmp_path / f"s{suffix}")
    loaded = ArraySample.read_file(path)
    assert type(loaded) is ArraySample
    assert loaded == sample


def test_read_file_accepts_str(tmp_path: Path) -> None:
    NumberSample(id="a", data=1).write_file(str(tmp_path / "s.pkl"))
    assert NumberSample.read_file(str(tmp_path / "s.pkl")).data == 1


@pytest.mark.parametrize("name", ["s.json", "s", "s.pk"])
def test_unsupported_suffix_names_the_path(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="unsupported sample file suffix"):
        NumberSample(id="a", data=1).write_file(tmp_path / name)
    with pytest.raises(ValueError, match=name.replace(".", r"\.")):
        NumberSample.read_file(tmp_path / name)


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"missing\.pkl"):
        NumberSample.read_file(tmp_path / "missing.pkl")


def test_unreadable_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "broken.pkl"
    path.write_bytes(b"not a pickle")
    with pytest.raises(StorageError, match=r"broken\.pkl"):
        NumberSample.read_file(path)


def test_reading_the_wrong_class_is_an_error(tmp_path: Path) -> None:
    path = NumberSample(id="a", data=1).write_file(tmp_path / "s.pkl")
    with pytest.raises(StorageError, match="NumberSample"):
        ArraySample.read_file(path)


def test_base_class_reads_any_sample(tmp_path: Path) -> None:
    path = NumberSample(id="a", data=1).write_file(tmp_path / "s.pkl")
    assert isinstance(BaseSample.read_file(path), NumberSample)


def test_write_into_missing_directory_is_a_storage_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="no-such-dir"):
        NumberSample(id="a", data=1).write_file(tmp_path / "no-such-dir" / "s.pkl")
