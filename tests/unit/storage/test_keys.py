"""Cache keys: what invalidates an entry, and what must not."""

from __future__ import annotations

import pickle
import threading
import warnings
from pathlib import Path
from typing import Any

import cloudpickle
import dill
import numpy as np
import pytest
from pydantic import Field

from datamultiproc import Cache, Compose, Processor, Save
from datamultiproc.exceptions import CacheWarning
from datamultiproc.storage import content_digest
from tests.unit.storage._types import (
    CALLS,
    SOURCE,
    ArraySample,
    CountedAdd,
    CountedDouble,
    NumberSample,
    define,
)


def digest(processor: Processor, upstream: tuple[Processor, ...] = ()) -> str:
    return Cache(processor=processor, cache_dir="unused").configuration(upstream).digest


def test_same_configuration_same_digest() -> None:
    assert digest(CountedAdd(step_size=2)) == digest(CountedAdd(step_size=2))


def test_parameter_edit_changes_digest() -> None:
    assert digest(CountedAdd(step_size=2)) != digest(CountedAdd(step_size=3))


def test_assigning_a_parameter_invalidates_the_memo() -> None:
    processor = CountedAdd(step_size=2)
    cache = Cache(processor=processor, cache_dir="unused")
    before = cache.configuration().digest
    processor.step_size = 3
    assert cache.configuration().digest == digest(CountedAdd(step_size=3)) != before


def test_class_defined_with_exec_is_fingerprinted() -> None:
    scale = define(SOURCE)
    assert digest(scale()) == digest(define(SOURCE)())


@pytest.mark.parametrize(
    "edit",
    [
        ("sample.data * self.factor", "sample.data * self.factor + 1"),
        ("return value + OFFSET", "return value - OFFSET"),
        ("OFFSET = 0", "OFFSET = 1"),
        ("factor: int = 2", "factor: int = 3"),
        ("return value + 0", "return value + 1"),
    ],
    ids=["method-code", "helper-code", "global-constant", "default-parameter", "helper-class"],
)
def test_code_edit_changes_digest(edit: tuple[str, str]) -> None:
    assert digest(define(SOURCE)()) != digest(define(SOURCE.replace(*edit))())


@pytest.mark.parametrize(
    "edit",
    [
        ("# scale it", "# multiply by the factor, then add the offset"),
        ('"""Multiply the data."""', '"""Multiply.\n\n    Longer text.\n    """'),
        ('    """Multiply the data."""\n', ""),
        ("\n\nclass Scale", "\n\n\n\n# a new comment\n\n\nclass Scale"),
        (
            "sample.data = helper(sample.data * self.factor)",
            "sample.data = helper(\n            sample.data * self.factor\n        )",
        ),
        ("def helper(value):\n", 'def helper(value):\n    """Add the offset."""\n'),
    ],
    ids=["comment", "docstring", "no-docstring", "blank-lines", "formatting", "helper-docstring"],
)
def test_comments_docstrings_and_formatting_keep_digest(edit: tuple[str, str]) -> None:
    edited = SOURCE.replace(*edit)
    assert edited != SOURCE
    assert digest(define(SOURCE)()) == digest(define(edited)())


def test_cache_version_pins_the_code_fingerprint() -> None:
    pinned = SOURCE.replace(
        "    factor: int = 2\n", '    cache_version = "1"\n    factor: int = 2\n'
    )
    edited = pinned.replace("sample.data * self.factor", "sample.data * self.factor + 1")
    assert digest(define(pinned)()) == digest(define(edited)())
    bumped = edited.replace('cache_version = "1"', 'cache_version = "2"')
    assert digest(define(pinned)()) != digest(define(bumped)())
    # Parameters still count.
    assert digest(define(pinned)(factor=2)) != digest(define(pinned)(factor=5))


def test_upstream_edit_changes_digest() -> None:
    cached = CountedDouble()
    assert digest(cached, (CountedAdd(step_size=1),)) != digest(cached, (CountedAdd(step_size=2),))
    assert digest(cached, (CountedAdd(),)) != digest(cached)


def test_upstream_compose_cache_and_save_are_seen_through(tmp_path: Path) -> None:
    cached = CountedDouble()
    plain = digest(cached, (CountedAdd(), CountedAdd(step_size=2)))
    wrapped = (
        Compose(Cache(processor=CountedAdd(), cache_dir=tmp_path), Save(save_to_dir=tmp_path)),
        CountedAdd(step_size=2),
    )
    assert digest(cached, wrapped) == plain


def test_key_mode_is_part_of_the_digest() -> None:
    by_id = Cache(processor=CountedAdd(), cache_dir="unused")
    by_content = Cache(processor=CountedAdd(), cache_dir="unused", key="content")
    assert by_id.configuration().digest != by_content.configuration().digest


def test_digest_survives_cloudpickle_of_a_notebook_class() -> None:
    cache = Cache(processor=define(SOURCE)(factor=4), cache_dir="unused")
    expected = cache.configuration((CountedAdd(),)).digest
    copy, upstream = cloudpickle.loads(cloudpickle.dumps((cache, (CountedAdd(),))))
    assert copy.configuration(upstream).digest == expected


@pytest.mark.parametrize(
    "serializer", [pickle, dill, cloudpickle], ids=["pickle", "dill", "cloudpickle"]
)
def test_digest_and_equality_survive_serializers(serializer: Any) -> None:
    cache = Cache(processor=CountedAdd(step_size=4), cache_dir="unused")
    expected = cache.configuration((CountedDouble(),)).digest
    copy, upstream = serializer.loads(serializer.dumps((cache, (CountedDouble(),))))
    assert copy == cache
    assert copy.configuration(upstream).digest == expected
    assert copy.stats.lookups == 0
    save = Save(save_to_dir="unused")
    assert serializer.loads(serializer.dumps(save)) == save


class HoldsLock(Processor):
    lock: Any

    def process(self, sample: NumberSample) -> NumberSample:
        return sample


class Config:
    def __init__(self, alpha: float) -> None:
        self.alpha = alpha


class HoldsObject(Processor):
    config: Any
    weights: np.ndarray
    names: set[str] = Field(default_factory=set)

    def process(self, sample: NumberSample) -> NumberSample:
        return sample


def test_unstable_parameter_warns_once_naming_processor_and_field() -> None:
    with pytest.warns(CacheWarning, match=r"HoldsLock\.lock"):
        first = digest(HoldsLock(lock=threading.Lock()))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        second = digest(HoldsLock(lock=threading.Lock()))
    assert first == second


def test_plain_objects_arrays_and_sets_are_keyed_by_value() -> None:
    weights = np.arange(6.0).reshape(2, 3)

    def make(alpha: float, weights: np.ndarray) -> str:
        return digest(HoldsObject(config=Config(alpha), weights=weights, names={"b", "a", "c"}))

    assert make(0.5, weights) == make(0.5, weights.copy())
    assert make(0.5, weights) != make(0.6, weights)
    changed = weights.copy()
    changed[1, 2] = -1
    assert make(0.5, weights) != make(0.5, changed)
    assert make(0.5, weights) != make(0.5, weights.T)  # shape is part of it


def test_content_digest_hashes_data_not_history() -> None:
    array = np.linspace(0, 1, 1000)
    sample = ArraySample(id="a", array=array)
    same = ArraySample(id="a", array=array.copy())
    same.processing_history.append(("Earlier", ""))
    assert content_digest(sample) == content_digest(same)
    assert content_digest(sample) != content_digest(ArraySample(id="a", array=array + 1e-12))
    strided = ArraySample(id="a", array=np.linspace(0, 1, 2000)[::2])
    assert content_digest(strided) == content_digest(
        ArraySample(id="a", array=strided.array.copy())
    )


def test_mutable_class_state_is_not_part_of_the_key() -> None:
    cached = CountedAdd()
    before = digest(cached)
    CALLS["CountedAdd"] += 10
    assert digest(cached) == before


def test_redefining_a_helper_in_the_notebook_namespace_invalidates() -> None:
    scale = define(SOURCE)
    cache = Cache(processor=scale(), cache_dir="unused")
    before = cache.configuration().digest
    namespace = scale.process.__globals__
    exec("def helper(value):\n    return value * 10\n", namespace)
    assert cache.configuration().digest != before
    exec("def helper(value):\n    return value + OFFSET\n", namespace)
    assert cache.configuration().digest == before


def test_reassigned_array_parameter_is_seen_even_at_a_reused_address() -> None:
    processor = HoldsObject(config=Config(0.5), weights=np.zeros(3))
    cache = Cache(processor=processor, cache_dir="unused")
    seen = {cache.configuration().digest}
    for value in range(1, 20):
        processor.weights = np.full(3, float(value))  # the old array is freed each time
        seen.add(cache.configuration().digest)
    assert len(seen) == 20


class Node:
    def __init__(self, value: int = 0) -> None:
        self.value = value
        self.links: list[Node] = []


def ring(size: int, value: int = 0) -> Node:
    """Nodes that each link to the next and to themselves: a cyclic parameter object."""
    nodes = [Node(value) for _ in range(size)]
    for position, node in enumerate(nodes):
        node.links = [nodes[(position + 1) % size], node]
    return nodes[0]


def test_cyclic_parameter_objects_terminate() -> None:
    # Separately built cycles: equal contents give one key, other contents another.
    first = digest(HoldsObject(config=ring(2), weights=np.zeros(1)))
    assert digest(HoldsObject(config=ring(2), weights=np.zeros(1))) == first
    assert digest(HoldsObject(config=ring(2, value=1), weights=np.zeros(1))) != first
    assert digest(HoldsObject(config=ring(3), weights=np.zeros(1))) != first


def test_mixin_code_is_part_of_the_fingerprint() -> None:
    namespace: dict[str, Any] = {"__name__": "__main__", "Processor": Processor}
    template = (
        "class Mixin:\n    def offset(self):\n        return {}\n"
        "class Mixed(Mixin, Processor):\n    def process(self, sample):\n        return sample\n"
    )
    exec(template.format(1), namespace)
    first = digest(namespace["Mixed"]())
    exec(template.format(2), namespace)
    assert digest(namespace["Mixed"]()) != first
