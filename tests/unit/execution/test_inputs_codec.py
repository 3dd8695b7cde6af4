"""Input checking (repeated ids, exact and in bounded memory) and the sample codec."""

from __future__ import annotations

import pickle
from collections.abc import Iterator

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


def test_seen_ids_are_exact_beyond_the_page_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_inputs, "_CACHE_KIB", 64)  # spill to the temporary file early
    seen = _inputs._SeenIds()
    ids = [f"sample-{i:06d}-{'x' * 40}" for i in range(20_000)]
    assert not any(seen.repeated(sample_id) for sample_id in ids)  # no false positives
    assert seen.repeated(ids[0])
    assert seen.repeated(ids[12_345])
    assert not seen.repeated("sample-new")
    assert seen.repeated("sample-new")
    seen.close()


def test_lazy_reader_reads_one_item_at_a_time() -> None:
    read = []

    def samples() -> Iterator[NumberSample]:
        for sample in number_samples(100):
            read.append(sample.id)
            yield sample

    reader = _inputs.InputReader(samples())
    assert reader.total is None
    items = iter(reader)
    next(items)
    assert len(read) == 1
    next(items)
    assert len(read) == 2  # no read-ahead: large samples are not held in a batch


@pytest.mark.parametrize("check_ids", [True, False])
def test_lazy_reader_checks_ids_only_when_asked(check_ids: bool) -> None:
    samples = [*number_samples(3), NumberSample(id="s1", data=9)]
    reader = _inputs.InputReader(iter(samples), check_ids=check_ids)
    indices = [index for index, _ in reader]
    if check_ids:
        assert indices == [0, 1, 2]
        assert "duplicate sample id 's1'" in reader.rejected[0].failure.message  # type: ignore[union-attr]
    else:
        assert indices == [0, 1, 2, 3]
        assert not reader.rejected


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
    assert isinstance(copy, ArraySample)
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


def _notebook_class() -> type:
    """A sample class as a notebook cell defines it: in __main__, not importable by name."""
    namespace: dict[str, object] = {"__name__": "__main__"}
    exec(
        "from datamultiproc import BaseSample\nclass CellSample(BaseSample):\n    value: int = 0\n",
        namespace,
    )
    cls = namespace["CellSample"]
    assert isinstance(cls, type)
    return cls


def test_notebook_classes_travel_by_value_once_per_peer() -> None:
    from datamultiproc.execution._codec import decode, encode, sample_state

    cell_sample = _notebook_class()
    items = [(i, sample_state(cell_sample(id=f"c{i}", value=i))) for i in range(5)]
    known: set[str] = set()
    first = encode(items, known)
    second = encode(items, known)
    assert len(known) == 1
    assert len(second[1]) * 3 < len(first[1])  # the class definition is not repeated
    decoded = decode(second[1], second[2:])
    assert decoded[3][1][0] is cell_sample
    assert decoded[3][1][1]["value"] == 3


def test_a_fresh_peer_gets_the_class_by_value_again() -> None:
    from datamultiproc.execution._codec import encode, sample_state

    cell_sample = _notebook_class()
    items = [(0, sample_state(cell_sample(id="c0")))]
    first_worker: set[str] = set()
    replacement: set[str] = set()
    assert len(encode(items, first_worker)[1]) == len(encode(items, replacement)[1])


def test_importable_classes_are_never_tokenised() -> None:
    from datamultiproc.execution._codec import encode, sample_state

    known: set[str] = set()
    encode([(0, sample_state(NumberSample(id="a", data=1)))], known)
    assert known == set()
