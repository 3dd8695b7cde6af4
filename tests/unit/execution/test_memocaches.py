"""Which ``functools`` caches a pipeline's clears are counted for, and how they travel."""

from __future__ import annotations

import functools
import pickle
import textwrap
from typing import Any

from datamultiproc.execution._memocaches import LRU_CACHE_TYPE, generation
from datamultiproc.execution._moduledata import collect, dump_pipeline

CELL = """
import functools
from re import _compile  # a library's cached function
from datamultiproc import Processor

@functools.lru_cache(maxsize=8)
def lookup(value):
    return value + 1

class Step(Processor):
    def process(self, sample):
        _compile("x", 0)
        sample.data = lookup(sample.data)
        return sample
"""


def cell() -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(compile(textwrap.dedent(CELL), "<cell>", "exec"), namespace)
    return namespace


def test_the_notebooks_cache_is_counted_a_librarys_is_left_alone() -> None:
    namespace = cell()
    data = collect(namespace["Step"]())
    assert [(module, name, clears) for module, _, name, clears in data.caches] == [
        ("__main__", "lookup", 0)
    ]
    assert "cache_clear" in vars(namespace["lookup"])  # counting from now on
    assert "cache_clear" not in vars(namespace["_compile"])
    namespace["lookup"].cache_clear()
    assert collect(namespace["Step"]()).caches[0][3] == 1


def test_a_clear_changes_the_key_and_the_function_travels_by_value() -> None:
    namespace = cell()
    step = namespace["Step"]()
    key = dump_pipeline(step)[0]
    assert dump_pipeline(step)[0] == key
    namespace["lookup"](1)  # filling the cache changes nothing
    assert dump_pipeline(step)[0] == key
    namespace["lookup"].cache_clear()
    cleared_key, cleared_blob = dump_pipeline(step)
    assert cleared_key != key
    # Unpickled as a new cached function over the same code, with the same parameters.
    *_, inner = pickle.loads(cleared_blob)
    pipeline, _ = pickle.loads(inner)
    travelled = pipeline.process.__globals__["lookup"]
    assert type(travelled) is LRU_CACHE_TYPE
    assert travelled is not namespace["lookup"]
    assert travelled.cache_parameters() == {"maxsize": 8, "typed": False}
    assert travelled.cache_info().currsize == 0
    assert travelled(1) == 2


def test_clears_before_the_first_look_are_not_counted() -> None:
    @functools.cache
    def square(x: int) -> int:
        return x * x

    square(2)
    square.cache_clear()
    assert generation(square) == 0
    square.cache_clear()
    assert generation(square) == 1
    assert square(3) == 9  # the function and its cache still work
    assert square.cache_info().currsize == 1
