"""Samples that share an object own their own copy in a worker, as on the other backends.

A chunk travels in one pickle, which sends an object several samples hold once; before
``own_objects`` a processor changing it in place changed the chunk's other samples too,
and a sample's result depended on which samples shared its chunk.
"""

from __future__ import annotations

import concurrent.futures as cf
from typing import Any

import numpy as np
import pytest

from datamultiproc import run
from datamultiproc.execution import MultiprocessBackend
from tests.helpers import ChangeInPlace, SharingSample, sharing_samples

pytestmark = pytest.mark.slow


def _backend(kind: str) -> Any:
    if kind == "executor":
        return cf.ProcessPoolExecutor(2)
    # Workers only: the parent copies each sample alone anyway.
    return MultiprocessBackend(2, start_method=kind, inline=False)


@pytest.mark.parametrize("kind", ["fork", "spawn", "executor"])
@pytest.mark.parametrize("shape", [(64,), (1 << 17,)], ids=["small-array", "shared-memory-array"])
def test_samples_sharing_objects_see_none_of_each_others_changes(
    kind: str, shape: tuple[int, ...]
) -> None:
    samples = sharing_samples(300, shape=shape)
    expected = run(
        ChangeInPlace(), sharing_samples(300, shape=shape), backend="sequential", progress=False
    )
    backend = _backend(kind)
    try:
        result = run(ChangeInPlace(), samples, backend=backend, progress=False)
    finally:
        if isinstance(backend, cf.Executor):
            backend.shutdown()
    assert len({s.seen for s in expected}) == 1  # each sample saw only its own change
    assert [s.seen for s in result] == [s.seen for s in expected]
    assert all(len(s.tags) == 2 for s in result)
    # Results share nothing either: changing one changes no other.
    result.samples[0].image[0] = -1
    assert result.samples[1].image[0] == 2
    # And the caller's objects are as they were.
    first = samples[0]
    assert np.all(first.image == 1)
    assert first.tags == ["raw"]
    assert first.meta == {"source": "camera"}
    assert first.nested.items == [0]


@pytest.mark.parametrize("kind", ["fork", "executor"])
def test_an_object_shared_within_one_sample_stays_shared(kind: str) -> None:
    # The other half of copy semantics: two fields holding one list still hold one list.
    def make() -> list[SharingSample]:
        samples = []
        for i in range(50):
            tags: list[str] = []
            samples.append(
                SharingSample(id=f"s{i}", image=np.ones(4), tags=tags, meta={"tags": tags})
            )
        return samples

    class AppendThroughOne(ChangeInPlace):
        def process(self, sample: SharingSample) -> SharingSample:
            sample.tags.append("x")
            sample.seen = len(sample.meta["tags"])
            return sample

    backend = _backend(kind)
    try:
        result = run(AppendThroughOne(), make(), backend=backend, progress=False)
    finally:
        if isinstance(backend, cf.Executor):
            backend.shutdown()
    expected = run(AppendThroughOne(), make(), backend="sequential", progress=False)
    assert [s.seen for s in result] == [s.seen for s in expected] == [1.0] * 50
