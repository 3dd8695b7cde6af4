"""The cache-hit path: what a hit remembers between calls, and what it checks every time.

A hit remembers file names by sample id and the configuration by the identity of what
it was computed from; these tests change things right after a hit and check that the
next call sees the change (a stale hit is the worst bug a cache can have).
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from datamultiproc import Cache, Compose
from datamultiproc.core import recording
from datamultiproc.exceptions import CacheWarning, StorageError
from datamultiproc.storage._files import write_pickle_atomic
from tests.unit.storage._types import (
    CALLS,
    ArraySample,
    CountedAdd,
    CountedDouble,
    NumberSample,
    ScaleArray,
    define,
)

STEPS = """
from datamultiproc import Processor

class Offset(Processor):
    amount: int = 1

    def process(self, sample):
        sample.data = sample.data + self.amount
        return sample

class Double(Processor):
    def process(self, sample):
        sample.data = sample.data * 2
        return sample
"""


def notebook_steps() -> tuple[type[Any], type[Any]]:
    return define(STEPS, "Offset"), define(STEPS, "Double")


def swap_code(cls: type[Any], body: str) -> None:
    """Replace ``cls.process``'s code object in place, as ``%autoreload 2`` does."""
    replacement: Any = define(
        f"def process(self, sample):\n    {body}\n    return sample\n", "process"
    )
    cls.process.__code__ = replacement.__code__


def big_sample(sample_id: str = "big") -> ArraySample:
    return ArraySample(id=sample_id, array=np.arange(40_000.0), label="x")  # 320 kB: read as a file


def test_code_swapped_in_place_right_after_a_hit_is_a_miss(cache_dir: Path) -> None:
    offset_cls, double_cls = notebook_steps()
    cache = Cache(processor=double_cls(), cache_dir=cache_dir)
    pipeline = Compose(offset_cls(), cache)
    assert pipeline(NumberSample(id="a", data=1)).data == 4
    assert pipeline(NumberSample(id="a", data=1)).data == 4  # a hit
    swap_code(double_cls, "sample.data = sample.data * 3")  # the wrapped step
    assert pipeline(NumberSample(id="a", data=1)).data == 6
    assert pipeline(NumberSample(id="a", data=1)).data == 6  # a hit of the new code
    swap_code(offset_cls, "sample.data = sample.data + 10")  # a step before the Cache
    assert pipeline(NumberSample(id="a", data=1)).data == 33
    assert (cache.stats.hits, cache.stats.misses) == (2, 3)


def test_parameters_assigned_right_after_a_hit_are_a_miss(cache_dir: Path, tmp_path: Path) -> None:
    wrapped = CountedAdd(step_size=1)
    cache = Cache(processor=wrapped, cache_dir=cache_dir)
    pipeline = Compose(CountedDouble(), cache)
    for _ in range(2):
        assert pipeline(NumberSample(id="a", data=1)).data == 3
    wrapped.step_size = 5  # the wrapped step's parameter
    assert pipeline(NumberSample(id="a", data=1)).data == 7
    pipeline.steps[0] = CountedAdd(step_size=2)  # another step before the Cache
    assert pipeline(NumberSample(id="a", data=1)).data == 8
    cache.cache_dir = tmp_path / "elsewhere"  # the Cache's own field
    assert pipeline(NumberSample(id="a", data=1)).data == 8
    assert (cache.stats.hits, cache.stats.misses) == (1, 4)
    assert len(list((tmp_path / "elsewhere").rglob("*.pickle"))) == 1


def test_one_cache_after_different_steps_keeps_their_entries_apart(cache_dir: Path) -> None:
    cache = Cache(processor=CountedDouble(), cache_dir=cache_dir)
    first = Compose(CountedAdd(step_size=1), cache)
    second = Compose(CountedAdd(step_size=2), cache)
    for _ in range(3):  # alternate: each pipeline hits its own entry
        assert first(NumberSample(id="a", data=0)).data == 2
        assert second(NumberSample(id="a", data=0)).data == 4
    assert CALLS["CountedDouble"] == 2
    assert cache.stats.hits == 4


def test_a_pruned_entry_is_recomputed_after_a_hit(cache_dir: Path) -> None:
    cache = Cache(processor=CountedAdd(), cache_dir=cache_dir)
    cache(NumberSample(id="a", data=1))
    cache(NumberSample(id="a", data=1))
    path = cache.entry_path(NumberSample(id="a", data=1))
    path.unlink()  # as prune() or a user would
    assert cache(NumberSample(id="a", data=1)).data == 2
    assert CALLS["CountedAdd"] == 2
    assert path.is_file()
    for entry in cache_dir.iterdir():  # the whole stage folder, too
        for file in entry.rglob("*"):
            if file.is_file():
                file.unlink()
    assert cache(NumberSample(id="a", data=1)).data == 2
    assert CALLS["CountedAdd"] == 3


@pytest.mark.parametrize("make", [lambda: NumberSample(id="a", data=1), big_sample])
def test_a_replaced_entry_is_loaded_as_it_now_is(cache_dir: Path, make: Any) -> None:
    cache = Cache(processor=CountedAdd() if make().id == "a" else ScaleArray(), cache_dir=cache_dir)
    cache(make())
    first = cache(make())
    path = cache.entry_path(make())
    replacement = first.model_copy(update={"label" if "label" in first.__dict__ else "data": 99})
    write_pickle_atomic(path, replacement, seconds=0.5)  # another process rewrote it
    with recording() as recorder:
        loaded = cache(make())
    assert loaded == replacement
    assert loaded is not first
    [record] = recorder.records
    assert record.cache_hit is True
    assert record.bytes_read == path.stat().st_size
    assert record.computed_seconds == 0.5


def test_large_entries_hit_whole_and_writable(cache_dir: Path) -> None:
    cache = Cache(processor=ScaleArray(), cache_dir=cache_dir)
    computed = cache(big_sample())
    path = cache.entry_path(big_sample())
    assert path.stat().st_size > 1 << 16  # read through a file, not in one call
    loaded = cache(big_sample())
    with recording() as recorder:
        recorded = cache(big_sample())
    for result in (loaded, recorded):
        assert result == computed
        result.array[0] = -1.0  # its own memory, not a view of a shared buffer
    assert recorder.records[0].bytes_read == path.stat().st_size
    assert recorder.records[0].computed_seconds is not None
    assert cache.stats.bytes_read == 2 * path.stat().st_size
    assert CALLS["ScaleArray"] == 1


def test_truncated_large_entries_are_recomputed(cache_dir: Path) -> None:
    cache = Cache(processor=ScaleArray(), cache_dir=cache_dir)
    expected = cache(big_sample())
    path = cache.entry_path(big_sample())
    whole = path.read_bytes()
    end = len(whole) - 13  # the pickle; the stored compute time follows it
    for offset in [1 << 16, end // 2, end - 1, *random.Random(1).sample(range(1 << 16, end), 5)]:
        path.write_bytes(whole[:offset])
        with pytest.warns(CacheWarning, match="recomputing"):
            assert cache(big_sample()) == expected
        assert path.read_bytes()[:end] == whole[:end]


def test_a_folder_in_place_of_an_entry_raises_storage_error(cache_dir: Path) -> None:
    cache = Cache(processor=CountedAdd(), cache_dir=cache_dir)
    cache(NumberSample(id="a", data=1))
    path = cache.entry_path(NumberSample(id="a", data=1))
    os.unlink(path)
    path.mkdir()
    with pytest.raises(StorageError, match=r"a\.pickle"):
        cache(NumberSample(id="a", data=1))
