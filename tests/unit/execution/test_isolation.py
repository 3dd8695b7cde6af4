"""own_objects: which samples of a chunk share an object with an earlier one."""

from __future__ import annotations

from typing import Any

import numpy as np

from datamultiproc.execution._codec import restore_sample, sample_state
from datamultiproc.execution._isolation import own_objects
from tests.helpers import AnySample, Part


def _items(*payloads: Any) -> list[Any]:
    return [(n, sample_state(AnySample(id=f"s{n}", payload=p))) for n, p in enumerate(payloads)]


def _payload(item: Any) -> Any:
    return restore_sample(item[1]).payload  # type: ignore[attr-defined]


def test_samples_sharing_nothing_mutable_are_left_as_they_are() -> None:
    text, number, frozen = "same text", 7, ("a", 1, None)
    items = _items(text, text, number, number, frozen, frozen, [1], [1], np.ones(3), np.ones(3))
    states = [state for _, state in items]
    assert own_objects(items) == 0
    assert [state for _, state in items] == states


def test_a_shared_object_anywhere_in_a_sample_makes_it_a_copy() -> None:
    array, listed, part = np.zeros(3), ["x"], Part(items=[1])
    cases = [
        array,  # an array
        (1, listed),  # inside a tuple
        {"deep": [{"deeper": listed}]},  # nested containers
        part,  # a nested model
        {"model": Part(items=part.items)},  # a list inside a model
    ]
    for shared in cases:
        items = _items(shared, shared, shared)
        assert own_objects(items) == 2, shared
        first, second, third = (_payload(item) for item in items)
        assert first is shared
        assert second is not shared
        assert third is not shared
        assert second is not third


def test_sharing_within_one_sample_is_not_sharing_between_samples() -> None:
    inner = [1]
    items = _items([inner, inner], [[2], [2]])
    assert own_objects(items) == 0


def test_a_copy_keeps_what_its_sample_shared_within_itself() -> None:
    shared, inner = [0], [1]
    items = _items({"a": shared, "b": [inner, inner]}, {"a": shared, "b": [inner, inner]})
    assert own_objects(items) == 1
    copy = _payload(items[1])
    assert copy["a"] is not shared
    assert copy["b"][0] is copy["b"][1]
    assert copy["b"][0] is not inner


def test_a_shared_set_of_assigned_fields_counts() -> None:
    first = AnySample(id="a", payload=1)
    second = AnySample(id="b", payload=2)
    object.__setattr__(second, "__pydantic_fields_set__", first.__pydantic_fields_set__)
    items = [(0, sample_state(first)), (1, sample_state(second))]
    assert own_objects(items) == 1
    assert items[1][1][2] is not first.__pydantic_fields_set__
