"""Input checking (duplicate ids across hash levels) and the sample codec."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from datamultiproc.exceptions import NotPicklableError
from datamultiproc.execution import _inputs
from datamultiproc.execution._codec import (
    decode,
    describe_unpicklable,
    encode,
    encode_pipeline,
    restore_sample,
    sample_state,
)
from tests.helpers import AddStep, AnySample, ArraySample, NumberSample, number_samples


def test_seen_ids_find_repeats_across_flushed_levels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_inputs, "_RECENT", 8)
    seen = _inputs._SeenIds()
    ids = [f"id{i}" for i in range(100)]
    assert seen.add(ids[:50]) == [False] * 50
    assert len(seen.levels) >= 1
    assert seen.add(["id3", "new", "id49", "new"]) == [True, False, True, True]
    assert seen.add(ids[50:]) == [False] * 50


def test_lazy_reader_reads_in_small_batches() -> None:
    read = []

    def samples():  # type: ignore[no-untyped-def]
        for sample in number_samples(100):
            read.append(sample.id)
            yield sample

    reader = _inputs.InputReader(samples())
    assert reader.total is None
    items = iter(reader)
    next(items)
    assert len(read) == 1
    next(items)
    assert len(read) == 3  # batches grow 1, 2, 4, ...


def test_sample_state_round_trip_keeps_fields_and_history() -> None:
    sample = AddStep()(NumberSample(id="a", data=1, optional_data="x"))
    copy = restore_sample(pickle.loads(pickle.dumps(sample_state(sample))))
    assert copy == sample
    assert type(copy) is NumberSample
    assert copy.processing_history == [("AddStep", "step_size=1")]
    copy.data = 5  # still validated on assignment
    with pytest.raises(ValueError, match="valid integer"):
        copy.data = "x"  # type: ignore[assignment]


def test_arrays_travel_out_of_band_and_stay_writable() -> None:
    sample = ArraySample(id="a", array=np.arange(1000, dtype=np.float64))
    __header, data, *buffers = encode(sample_state(sample))
    assert len(buffers) == 1
    assert len(data) < 1000
    copy = restore_sample(
        decode(data, [np.frombuffer(bytearray(b), dtype=np.uint8) for b in buffers])
    )
    assert np.array_equal(copy.array, sample.array)
    copy.array[0] = 42.0


def test_unpicklable_sample_is_described_by_field() -> None:
    import threading

    sample = AnySample(id="locked", payload=threading.Lock())
    error = describe_unpicklable(sample, TypeError("x"))
    assert isinstance(error, NotPicklableError)
    assert "'locked'" in str(error)
    assert "'payload'" in str(error)
    assert "lock" in str(error)


def test_unpicklable_processor_raises_naming_the_field() -> None:
    import threading

    from tests.helpers import Holder

    with pytest.raises(NotPicklableError, match=r"Holder.*'thing' holds a lock"):
        encode_pipeline(Holder(thing=threading.Lock()))
