from __future__ import annotations

from datamultiproc.execution._chunking import ChunkSizer


def sizer(**overrides: object) -> ChunkSizer:
    options: dict[str, object] = {
        "fixed": None,
        "total": None,
        "slots": 2,
        "target_seconds": 0.02,
        "max_chunk": 64,
    }
    options.update(overrides)
    return ChunkSizer(**options)  # type: ignore[arg-type]


def test_chunks_start_at_one_and_double_up_to_the_cap() -> None:
    chunks = sizer()
    sizes = []
    for _ in range(9):
        sizes.append(chunks.size())
        chunks.took(sizes[-1])
    assert sizes == [1, 2, 4, 8, 16, 32, 64, 64, 64]


def test_measured_time_limits_a_chunk_to_the_target() -> None:
    chunks = sizer(max_chunk=4096)
    for _ in range(12):
        chunks.took(1)
    chunks.observe_seconds(0.010, 5)  # 2 ms per sample: 10 fit in 20 ms
    assert chunks.size() == 10


def test_bytes_limit_a_chunk() -> None:
    chunks = sizer(max_chunk=4096, target_bytes=1000)
    for _ in range(12):
        chunks.took(1)
    chunks.observe_bytes(1000, 10)  # 100 bytes per sample
    assert chunks.size() == 10


def test_the_tail_of_a_known_input_is_split_across_workers() -> None:
    chunks = sizer(total=100, max_chunk=4096)
    for _ in range(10):
        chunks.took(0)
    chunks.took(90)
    assert chunks.size() == 3  # 10 left over 2 workers, two chunks each
    assert chunks.size(requeued=10) == 5


def test_a_fixed_chunksize_wins() -> None:
    chunks = sizer(fixed=7, total=3)
    chunks.observe_seconds(10.0, 1)
    assert chunks.size() == 7


def test_the_tail_keeps_min_seconds_of_work_per_chunk() -> None:
    def tail(seconds_per_sample: float | None) -> int:
        chunks = sizer(total=10_000, max_chunk=4096, min_seconds=0.01)
        for _ in range(12):
            chunks.took(0)
        chunks.took(9_900)
        if seconds_per_sample is not None:
            chunks.observe_seconds(seconds_per_sample * 10, 10)
        return chunks.size()

    assert tail(None) == 25  # cost unknown: 100 left over 2 workers, two chunks each
    assert tail(0.0005) == 25  # 0.5 ms per sample: 20 make the 10 ms, 25 are more
    assert tail(0.00001) >= 100  # 10 µs: 1,000 would make 10 ms; the 100 left go in one


def test_a_remainder_too_small_for_its_own_unit_joins_the_last_chunk() -> None:
    chunks = sizer(total=1_000, max_chunk=4096, min_seconds=0.01)
    for _ in range(12):
        chunks.took(0)
    chunks.observe_seconds(0.001, 10)  # 100 µs per sample: 100 make 10 ms
    chunks.took(700)
    assert chunks.size() == 100  # 300 left: 75 each over 2 workers, but at least 100
    chunks.took(100)
    assert chunks.size() == 100  # 200 left: 100 leave 100, a chunk of their own
    chunks.took(60)
    assert chunks.size() == 140  # 140 left: 100 would leave 40, too few for a chunk
