"""Real processes: concurrent writers, a writer killed mid-write, keys equal in workers."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

from datamultiproc import Cache, Compose
from tests.unit.storage._types import (
    SOURCE,
    CountedAdd,
    KillSample,
    Passthrough,
    configuration_digest,
    define,
    run_cache_on,
    run_cache_worker,
    run_save_and_read_worker,
)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
IDS = [f"s{index}" for index in range(40)] + ["Mixed/Case", "con", "../up"]


def test_concurrent_cache_writers_leave_only_loadable_files(cache_dir: Path) -> None:
    context = multiprocessing.get_context("spawn")
    with context.Pool(3) as pool:
        results = pool.starmap(run_cache_worker, [(str(cache_dir), IDS, 3)] * 3)
    expected = [len(sample_id) + 5 for sample_id in IDS] * 3
    assert results == [expected] * 3
    entries = list(cache_dir.rglob("*.pickle"))
    assert len(entries) == len(IDS)
    for entry in entries:
        with entry.open("rb") as handle:
            pickle.load(handle)
    assert not [p for p in cache_dir.rglob(".tmp-*")]


def test_concurrent_save_writers_and_readers_never_see_torn_files(save_dir: Path) -> None:
    context = multiprocessing.get_context("spawn")
    with context.Pool(3) as pool:
        loads = pool.starmap(run_save_and_read_worker, [(str(save_dir), IDS[:10], 15)] * 3)
    assert loads == [150] * 3
    assert len(list(save_dir.rglob("*.pickle"))) == 10


def test_process_killed_mid_write_leaves_no_loadable_entry(cache_dir: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pickling"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    script = [sys.executable, "-m", "tests.unit.storage._types", str(cache_dir), str(marker)]
    writer = subprocess.Popen(script, cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert writer.poll() is None, "the writer exited before it started writing"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.2)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    cache = Cache(processor=Passthrough(), cache_dir=cache_dir)
    sample = KillSample(id="victim", blob=b"small")
    assert not cache.entry_path(sample).exists()
    [torn] = cache_dir.rglob(".tmp-*.part")
    assert torn.stat().st_size > 0  # the blob was on its way to disk
    assert cache(sample).blob == b"small"
    assert cache.stats.misses == 1


@pytest.mark.parametrize("method", multiprocessing.get_all_start_methods())
def test_key_is_identical_in_workers(method: str) -> None:
    notebook_class = define(SOURCE)
    pairs = [
        (Cache(processor=notebook_class(factor=3), cache_dir="unused"), (CountedAdd(),)),
        (
            Cache(processor=CountedAdd(step_size=2), cache_dir="unused"),
            (Compose(notebook_class()),),
        ),
    ]
    expected = [cache.configuration(upstream).digest for cache, upstream in pairs]
    payloads = [cloudpickle.dumps(pair) for pair in pairs]
    with multiprocessing.get_context(method).Pool(1) as pool:
        assert pool.map(configuration_digest, payloads) == expected


def test_notebook_class_entries_cross_between_notebook_and_spawned_worker(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    namespace: dict[str, object] = {"__name__": "__main__"}
    source = "from datamultiproc import BaseSample\nclass CellNumber(BaseSample):\n    data: int\n"
    exec(source, namespace)
    cell_number: Any = namespace["CellNumber"]
    monkeypatch.setattr(sys.modules["__main__"], "CellNumber", cell_number, raising=False)
    cache = Cache(processor=Passthrough(), cache_dir=cache_dir)
    cache(cell_number(id="from-notebook", data=1))  # written by reference, as in a notebook
    payload = cloudpickle.dumps(
        (cache, [cell_number(id="from-notebook", data=-1), cell_number(id="from-worker", data=2)])
    )
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        data, stats = cloudpickle.loads(pool.apply(run_cache_on, (payload,)))
    assert data == [1, 2]
    assert (stats.hits, stats.misses) == (1, 1)
    loaded = cache(cell_number(id="from-worker", data=-1))  # written by the worker
    assert type(loaded) is cell_number
    assert loaded.data == 2
    assert cache.stats.hits == 1
