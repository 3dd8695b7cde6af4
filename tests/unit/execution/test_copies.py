"""copy_sample: the same deep copy as model_copy(deep=True), shared objects kept shared."""

from __future__ import annotations

import datetime
import enum
from typing import Any, TypeVar

import numpy as np
import pytest
from pydantic import BaseModel, PrivateAttr

from datamultiproc import BaseSample
from datamultiproc.execution._copies import copy_sample
from tests.helpers import AnySample


class Inner(BaseModel):
    values: list[int]


class Everything(BaseSample):
    array: np.ndarray
    same: np.ndarray
    nested: dict[str, list[float]]
    inner: Inner
    objects: np.ndarray


def test_a_copy_equals_the_original_and_shares_nothing_mutable() -> None:
    array = np.arange(6).reshape(2, 3)
    objects = np.empty(1, dtype=object)
    objects[0] = [1]
    sample = Everything(
        id="a",
        array=array,
        same=array,
        nested={"k": [1.0, 2.0]},
        inner=Inner(values=[1]),
        objects=objects,
        processing_history=[("Load", "x=1")],
    )
    copy = copy_sample(sample)
    assert copy == sample
    assert copy.model_fields_set == sample.model_fields_set
    assert copy.array is not sample.array
    assert copy.same is copy.array  # shared within the sample, as deepcopy and pickle keep it
    copy.array += 1
    copy.nested["k"].append(3.0)
    copy.inner.values.append(2)
    copy.objects[0].append(2)
    copy.processing_history.append(("Step", ""))
    assert sample.array[0, 0] == 0
    assert sample.nested == {"k": [1.0, 2.0]}
    assert sample.inner.values == [1]
    assert sample.objects[0] == [1]
    assert sample.processing_history == [("Load", "x=1")]
    copy.id = "b"  # assignment is still validated
    assert sample.id == "a"


# -- the fast path for samples of immutable values: the same copy, found per sample ---------


class Color(enum.Enum):
    RED = "red"


class Flat(BaseSample):
    number: int
    text: str = ""
    ratio: float | None = None
    pair: tuple[int, str] = (0, "")
    tags: frozenset[str] = frozenset()
    color: Color = Color.RED
    when: datetime.date = datetime.date(2026, 1, 1)
    values: list[int] = []  # noqa: RUF012 (a pydantic field)


class FlatChild(Flat):
    extra_number: int = 0


class Loose(BaseSample, extra="allow"):
    number: int = 0


class WithPrivate(BaseSample):
    number: int = 0
    _scratch: list[int] = PrivateAttr(default_factory=list)


SampleT = TypeVar("SampleT", bound=BaseSample)


def _same_copy(sample: SampleT) -> SampleT:
    """copy_sample's result, checked against pydantic's own deep copy."""
    copy = copy_sample(sample)
    reference = sample.model_copy(deep=True)
    assert type(copy) is type(sample)
    assert copy == reference == sample
    assert copy.model_fields_set == reference.model_fields_set
    assert copy.model_extra == reference.model_extra
    assert copy.__pydantic_private__ == reference.__pydantic_private__
    assert copy.processing_history is not sample.processing_history
    return copy


def test_an_immutable_only_sample_is_copied_and_the_original_never_changes() -> None:
    sample = FlatChild(
        id="a",
        number=1,
        pair=(1, "x"),
        tags=frozenset({"t"}),
        values=[1, 2],
        extra_number=np.int64(3),
        processing_history=[("Load", "x=1")],
    )
    copy = _same_copy(sample)
    assert copy.pair is sample.pair  # immutable values are shared, as deepcopy shares them
    assert copy.values is not sample.values
    copy.number += 1
    copy.values.append(3)
    copy.processing_history.append(("Step", ""))
    copy.ratio = 0.5
    assert (sample.number, sample.values, sample.ratio) == (1, [1, 2], None)
    assert sample.processing_history == [("Load", "x=1")]
    assert sample.model_fields_set == {
        "id",
        "number",
        "pair",
        "tags",
        "values",
        "extra_number",
        "processing_history",
    }
    assert "ratio" not in sample.model_fields_set
    assert "ratio" in copy.model_fields_set  # set on the copy only


@pytest.mark.parametrize(
    "values",
    [
        [[1], [2]],  # lists inside the list
        [{"k": 1}],  # a dict
        [(1, [2])],  # a tuple holding a list
        [np.arange(3)],  # an array
    ],
)
def test_lists_holding_mutable_values_are_copied_deeply(values: list[Any]) -> None:
    sample = AnySample(id="a", payload=values)
    before = repr(sample.payload)
    copy = copy_sample(sample)
    inner = copy.payload[0]  # type: ignore[index]
    if isinstance(inner, list):
        inner.append(9)
    elif isinstance(inner, dict):
        inner["k"] = 9
    elif isinstance(inner, tuple):
        inner[1].append(9)
    else:
        inner += 1
    assert repr(copy.payload) != before  # the copy changed...
    assert repr(sample.payload) == before  # ...the original did not


def test_mixed_samples_nested_models_extras_and_private_state_take_the_full_copy() -> None:
    mixed = Everything(
        id="m",
        array=np.zeros(2),
        same=np.zeros(2),
        nested={"k": [1.0]},
        inner=Inner(values=[1]),
        objects=np.empty(0, dtype=object),
    )
    copy = _same_copy(mixed)
    copy.inner.values.append(2)
    copy.nested["k"].append(2.0)
    assert mixed.inner.values == [1]
    assert mixed.nested == {"k": [1.0]}
    loose = Loose(id="l", number=1, notes=[1])
    copy_loose = _same_copy(loose)
    copy_loose.notes.append(2)  # type: ignore[attr-defined]
    assert loose.notes == [1]  # type: ignore[attr-defined]
    private = WithPrivate(id="p")
    private._scratch.append(1)
    copy_private = _same_copy(private)
    copy_private._scratch.append(2)
    assert private._scratch == [1]


def test_a_list_held_by_two_fields_stays_shared_in_the_copy() -> None:
    shared = [1, 2]
    sample = Twice.model_construct(id="t", first=shared, second=shared)  # validation would copy
    assert sample.first is sample.second
    copy = copy_sample(sample)
    assert copy.first is copy.second
    assert copy.first is not shared
    copy.first.append(3)
    assert shared == [1, 2]
    assert copy.second == [1, 2, 3]


class Twice(BaseSample):
    first: list[int]
    second: list[int]


class Thrice(BaseSample):
    first: list[int]
    second: list[int]
    third: list[int]


@pytest.mark.parametrize("shared", [(), ("first", "third"), ("second", "third")])
def test_lists_shared_by_any_two_of_three_fields_stay_shared(shared: tuple[str, ...]) -> None:
    values: dict[str, Any] = {
        name: [index] for index, name in enumerate(("first", "second", "third"))
    }
    if shared:
        values[shared[1]] = values[shared[0]]
    sample = Thrice.model_construct(id="t", **values)  # validation would copy
    copy = _same_copy(sample)
    reference = sample.model_copy(deep=True)
    pairs = [("first", "second"), ("first", "third"), ("second", "third")]
    assert [getattr(copy, a) is getattr(copy, b) for a, b in pairs] == [
        getattr(reference, a) is getattr(reference, b) for a, b in pairs
    ]
    assert all(getattr(copy, name) is not getattr(sample, name) for name in values)
