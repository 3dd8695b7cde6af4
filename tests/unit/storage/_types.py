"""Samples, processors and worker functions for storage tests; importable by spawned workers."""

from __future__ import annotations

import collections
import os
import pickle
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from datamultiproc import BaseSample, Cache, Processor, Save

#: How often each stage's process() ran in this process, by stage name.
CALLS: collections.Counter[str] = collections.Counter()


class NumberSample(BaseSample):
    data: int


class ArraySample(BaseSample):
    array: np.ndarray
    label: str = ""


class CountedAdd(Processor):
    step_size: int = 1

    def process(self, sample: NumberSample) -> NumberSample:
        CALLS["CountedAdd"] += 1
        sample.data = sample.data + self.step_size
        return sample


class CountedDouble(Processor):
    def process(self, sample: NumberSample) -> NumberSample:
        CALLS["CountedDouble"] += 1
        sample.data = sample.data * 2
        return sample


class ScaleArray(Processor):
    factor: float = 2.0

    def process(self, sample: ArraySample) -> ArraySample:
        CALLS["ScaleArray"] += 1
        sample.array = sample.array * self.factor
        return sample


class TagWithSet(Processor):
    """A set parameter: its text and key must be the same in every process."""

    tags: set[str] = Field(default_factory=lambda: {"alpha", "beta", "gamma", "delta"})

    def process(self, sample: NumberSample) -> NumberSample:
        sample.data = sample.data + len(self.tags)
        return sample


class Passthrough(Processor):
    def process(self, sample: BaseSample) -> BaseSample:
        return sample


class KillSample(BaseSample):
    blob: bytes
    slow: Any = None


class SlowPickle:
    """Pickling it announces itself with a marker file, then hangs (to be killed mid-write)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        Path(self.marker).write_text("pickling")
        time.sleep(60)
        return (SlowPickle, (self.marker,))


SOURCE = '''
from datamultiproc import Processor

OFFSET = 0


def helper(value):
    return value + OFFSET


class Shift:
    def apply(self, value):
        return value + 0


class Scale(Processor):
    """Multiply the data."""

    factor: int = 2

    def process(self, sample):
        # scale it
        sample.data = helper(sample.data * self.factor)
        sample.data = Shift().apply(sample.data)
        return sample
'''


def define(source: str, name: str = "Scale") -> type[Any]:
    """Define a class the way a notebook cell or `python -` does: in a fresh __main__.

    Typed ``type[Any]``: mypy cannot see the parameters of a class made from source.
    """
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(compile(textwrap.dedent(source), "<cell>", "exec"), namespace)
    return namespace[name]  # type: ignore[no-any-return]


def run_cache_worker(cache_dir: str, ids: list[str], rounds: int) -> list[int]:
    """Run a Cache over ``ids`` ``rounds`` times, forcing rewrites; return the results."""
    cache = Cache(processor=CountedAdd(step_size=5), cache_dir=cache_dir)
    results = []
    for _ in range(rounds):
        for sample_id in ids:
            Path(cache.entry_path(NumberSample(id=sample_id, data=0))).unlink(missing_ok=True)
            results.append(cache(NumberSample(id=sample_id, data=len(sample_id))).data)
    return results


def run_save_and_read_worker(save_dir: str, ids: list[str], rounds: int) -> int:
    """Save samples repeatedly while loading whatever exists; return how many loads were done."""
    save = Save(save_to_dir=save_dir)
    loads = 0
    for index in range(rounds):
        for sample_id in ids:
            sample = ArraySample(id=sample_id, array=np.full(20_000, index), label=sample_id)
            sample.processing_history.append(("Writer", ""))
            save(sample)
            path = save.entry_path(sample)
            with open(path, "rb") as handle:
                loaded = pickle.load(handle)
            assert loaded.id == sample_id
            assert (loaded.array == loaded.array[0]).all()
            loads += 1
    return loads


def configuration_digest(payload: bytes) -> str:
    """Unpickle (with cloudpickle) a (cache, upstream) pair and return its key digest."""
    import cloudpickle

    cache, upstream = cloudpickle.loads(payload)
    return str(cache.configuration(upstream).digest)


def run_cache_on(payload: bytes) -> bytes:
    """Run a cloudpickled (cache, samples) pair here; return cloudpickled (data, stats)."""
    import cloudpickle

    cache, samples = cloudpickle.loads(payload)
    data = [cache(sample).data for sample in samples]
    return bytes(cloudpickle.dumps((data, cache.stats)))


def write_killable_entry(cache_dir: str, marker: str) -> None:
    """Entry point of a subprocess that is SIGKILLed while writing a cache entry."""
    cache = Cache(processor=Passthrough(), cache_dir=cache_dir)
    cache(KillSample(id="victim", blob=os.urandom(1 << 20), slow=SlowPickle(marker)))


if __name__ == "__main__":
    write_killable_entry(sys.argv[1], sys.argv[2])
