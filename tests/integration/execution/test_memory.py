"""The parent's peak memory does not grow with the input: measured in fresh interpreters."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[3]


def _bench() -> ModuleType:
    # The measurement is the one benchmarks/bench_memory.py prints at full size.
    spec = importlib.util.spec_from_file_location(
        "bench_memory", ROOT / "benchmarks/bench_memory.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(600)
@pytest.mark.parametrize(
    ("kind", "short", "long"), [("numbers", 20_000, 200_000), ("cache", 2_000, 20_000)]
)
def test_a_ten_times_longer_generator_does_not_raise_the_peak(
    kind: str, short: int, long: int
) -> None:
    bench = _bench()
    first, second = bench.measure(kind, short), bench.measure(kind, long)
    print(kind, first, second)  # shown with -s
    assert second["growth_mib"] < 10
    assert second["growth_mib"] - first["growth_mib"] < 8  # in-flight chunks vary, not ids


@pytest.mark.timeout(300)
def test_large_array_samples_are_not_read_ahead_nor_chunked_past_the_byte_cap() -> None:
    bench = _bench()
    short, long = bench.measure("arrays", 600), bench.measure("arrays", 3_000)
    print(short, long)
    assert long["growth_mib"] - short["growth_mib"] < 50  # MB of 200 kB samples: 250 of them


@pytest.mark.timeout(300)
def test_a_paused_consumer_reads_no_more_input() -> None:
    out = _bench().measure("pause", 20_000)
    assert out["paused"] == 0
    assert out["growth_mib"] < 10
