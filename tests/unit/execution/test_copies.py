"""copy_sample: the same deep copy as model_copy(deep=True), shared objects kept shared."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel

from datamultiproc import BaseSample
from datamultiproc.execution._copies import copy_sample


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
