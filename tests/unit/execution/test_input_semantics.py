"""run and imap never change the caller's samples, on any backend; a direct call does."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import datamultiproc
from datamultiproc import Compose, Processor
from datamultiproc.exceptions import FailuresWarning
from datamultiproc.execution import MultiprocessBackend
from datamultiproc.execution._policy import InlinePolicy
from tests.helpers import AnySample, Holder, Measure, TileSample, tile_samples

BACKENDS = [
    "sequential",
    "thread",
    pytest.param("process", marks=pytest.mark.slow),
]


def snapshot(samples: list[TileSample]) -> list[tuple[object, ...]]:
    return [
        (s.id, s.size, s.pixels.copy(), dict(s.features), list(s.processing_history))
        for s in samples
    ]


def assert_unchanged(samples: list[TileSample], before: list[tuple[object, ...]]) -> None:
    for sample, (sample_id, size, pixels, features, history) in zip(samples, before, strict=True):
        assert (sample.id, sample.size, sample.features, sample.processing_history) == (
            sample_id,
            size,
            features,
            history,
        )
        np.testing.assert_array_equal(sample.pixels, pixels)


@pytest.mark.parametrize("backend", BACKENDS)
def test_run_leaves_the_callers_samples_unchanged(backend: str) -> None:
    samples = tile_samples(6)
    before = snapshot(samples)
    pipeline = Measure(scribble=True)  # changes the pixel array in place
    result = datamultiproc.run(pipeline, samples, backend=backend, workers=2, progress=False)
    assert_unchanged(samples, before)
    assert [s.processing_history for s in result] == [[("Measure", "scale=1.0 scribble=True")]] * 6
    assert result.samples[0].pixels[0] == samples[0].pixels[0] + 1
    assert all(out is not given for out, given in zip(result, samples, strict=True))
    # A second run on the same inputs records every step once, not twice.
    again = datamultiproc.run(pipeline, samples, backend=backend, workers=2, progress=False)
    assert [len(s.processing_history) for s in again] == [1] * 6


@pytest.mark.parametrize("backend", BACKENDS)
def test_imap_leaves_the_callers_samples_unchanged(backend: str) -> None:
    samples = tile_samples(4)
    before = snapshot(samples)
    outputs = list(Measure(scribble=True).imap(samples, backend=backend, workers=2, progress=False))
    assert len(outputs) == 4
    assert_unchanged(samples, before)


def test_calling_a_processor_directly_still_works_in_place() -> None:
    sample = tile_samples(1)[0]
    out = Compose([Measure(scribble=True)])(sample)
    assert out is sample
    assert sample.processing_history == [("Measure", "scale=1.0 scribble=True")]
    assert sample.pixels[0] == 1


def test_a_sample_that_cannot_be_copied_fails_with_a_clear_message() -> None:
    import threading

    class Uncopyable:
        def __deepcopy__(self, memo: object) -> object:
            msg = "no copies of this"
            raise TypeError(msg)

    samples = [AnySample(id="a", payload=Uncopyable()), AnySample(id="b", payload=threading.Lock)]
    with pytest.warns(datamultiproc.exceptions.FailuresWarning):
        result = datamultiproc.run(Holder(), samples, backend="sequential", progress=False)
    assert [f.sample_id for f in result.failures] == ["a"]
    assert "cannot copy the sample (TypeError: no copies of this)" in result.failures[0].message


class _WriteInto(Processor):
    """Writes into its sample's array in place; records whether it could."""

    def process(self, sample: AnySample) -> AnySample:
        sample.payload[0] = -1  # type: ignore[index]
        return sample


@pytest.mark.parametrize("backend", [*BACKENDS, "parent"])
def test_a_read_only_input_array_is_read_only_for_the_processor_on_every_backend(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In a plain loop the processor gets the caller's read-only array, and a worker gets
    # it read-only too (pickling keeps the flag); the copies of the in-process backends
    # and of the parent must not make it writable: a write would then succeed or fail
    # depending on which process ran the sample.
    locked = np.arange(1 << 17, dtype=np.float64)  # 1 MiB: the shared-memory path
    locked.flags.writeable = False
    small = np.frombuffer(b"\x01" * 64, dtype=np.uint8)  # read-only from the start
    samples = [AnySample(id=f"s{i}", payload=(locked if i % 2 else small)) for i in range(8)]
    chosen: Any = backend
    if backend == "parent":  # the process backend's parent runs every sample itself
        chosen = MultiprocessBackend(2)

        def every_sample(policy: InlinePolicy) -> int:
            policy.active = True
            return 8

        monkeypatch.setattr(InlinePolicy, "chunk_size", every_sample)
        monkeypatch.setattr(InlinePolicy, "needs_workers", property(lambda policy: False))
        monkeypatch.setattr(InlinePolicy, "deadline", lambda policy, size, started: float("inf"))
    with pytest.warns(FailuresWarning, match="8 of 8"):
        result = datamultiproc.run(_WriteInto(), samples, backend=chosen, workers=2, progress=False)
    assert all("read-only" in f.message for f in result.failures)
    if backend == "parent":
        assert {r.worker for r in result.records} == {"parent"}
    assert locked[0] == 0
    assert small[0] == 1
