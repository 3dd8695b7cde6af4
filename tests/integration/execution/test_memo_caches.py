"""A ``functools`` cache the notebook cleared is cleared in warm workers too.

Before, a processor loading a table through an ``lru_cache`` function kept using the
table each warm worker had cached after the notebook edited the file and called
``cache_clear()``, without a word, where the sequential backend loaded the new one.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from datamultiproc import run
from datamultiproc.execution import MultiprocessBackend
from datamultiproc.execution._pool import shutdown_pools
from tests import usercode
from tests.helpers import number_samples

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[3]

CACHED_TABLE = """
import functools
import os

from datamultiproc import Processor

TABLE_FILE = {table!r}
LOG_FILE = {log!r}


@functools.lru_cache(maxsize=None)
def table():
    with open(LOG_FILE, "a") as log:
        log.write(f"{{os.getpid()}}\\n")
    with open(TABLE_FILE) as source:
        return int(source.read())


class AddFromTable(Processor):
    def process(self, sample):
        sample.data = sample.data + table()
        return sample
"""


@pytest.fixture
def cached_table(tmp_path: Path) -> Iterator[tuple[ModuleType, Path, Path]]:
    table, log = tmp_path / "table.txt", tmp_path / "loads.log"
    table.write_text("1")
    source = CACHED_TABLE.format(table=str(table), log=str(log))
    with usercode.user_module(tmp_path, source) as (module, _):
        yield module, table, log


def loads(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def check_a_cleared_cache(module: ModuleType, table: Path, log: Path, backend: Any) -> None:
    def added() -> set[int]:
        result = run(module.AddFromTable(), number_samples(20), backend=backend, progress=False)
        assert {r.worker for r in result.records} != {"parent"}
        return {s.data - i for i, s in enumerate(result)}

    assert added() == {1}
    first_loads = len(loads(log))
    assert added() == {1}
    assert len(loads(log)) == first_loads  # kept between runs: each worker loaded once
    table.write_text("2")
    assert added() == {1}  # not cleared: the cache holds, as it does on the sequential backend
    module.table.cache_clear()
    assert added() == {2}  # cleared in the notebook: cleared in the workers
    assert module.table.cache_info().currsize == 0  # the notebook's own cache as it left it
    table.write_text("3")
    module.table.cache_clear()
    assert added() == {3}


@pytest.mark.parametrize("start_method", ["fork", "spawn", "forkserver"])
def test_warm_workers_clear_a_cache_the_notebook_cleared(
    cached_table: tuple[ModuleType, Path, Path], start_method: str
) -> None:
    shutdown_pools()
    try:
        backend = MultiprocessBackend(2, start_method=start_method, inline=False)
        check_a_cleared_cache(*cached_table, backend)
    finally:
        shutdown_pools()


def test_an_executors_workers_clear_a_cache_the_notebook_cleared(
    cached_table: tuple[ModuleType, Path, Path],
) -> None:
    with cf.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as executor:
        check_a_cleared_cache(*cached_table, executor)


def test_the_sequential_backend_agrees(cached_table: tuple[ModuleType, Path, Path]) -> None:
    module, table, _ = cached_table

    def added() -> set[int]:
        result = run(module.AddFromTable(), number_samples(5), backend="sequential")
        return {s.data - i for i, s in enumerate(result)}

    assert added() == {1}
    table.write_text("2")
    assert added() == {1}
    module.table.cache_clear()
    assert added() == {2}


NOTEBOOK_SCRIPT = """
import functools, sys
from datamultiproc import BaseSample, Cache, Processor, run
from datamultiproc.execution import MultiprocessBackend

TABLE_FILE, CACHE_DIR = sys.argv[2], sys.argv[3]

class Item(BaseSample):
    data: int = 0

@functools.lru_cache
def table():
    with open(TABLE_FILE) as source:
        return int(source.read())

@functools.cache
def fibonacci(n):  # calls itself through its cache
    return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)

class AddFromTable(Processor):
    def process(self, sample):
        sample.data += table() + fibonacci(10)
        return sample

if __name__ == "__main__":
    backend = MultiprocessBackend(2, start_method=sys.argv[1], inline=False)
    def added(step):
        result = run(step, [Item(id=str(i)) for i in range(8)], backend=backend)
        assert not result.failures, result.failures[0].traceback
        return sorted({s.data for s in result})
    print(added(AddFromTable()))
    open(TABLE_FILE, "w").write("2")
    table.cache_clear()
    print(added(AddFromTable()))
    cached = Cache(processor=AddFromTable(), cache_dir=CACHE_DIR)
    print(added(cached))
    exec("@functools.lru_cache\\ndef table():\\n    return 100\\n")  # the cell, edited and run again
    print(added(AddFromTable()))
    print(added(Cache(processor=AddFromTable(), cache_dir=CACHE_DIR)))  # the Cache's new key
    print(added(Cache(processor=AddFromTable(), cache_dir=CACHE_DIR)))  # now a hit
"""


@pytest.mark.parametrize("start_method", ["fork", "spawn", "forkserver"])
def test_a_notebooks_own_cached_function(tmp_path: Path, start_method: str) -> None:
    # Defined in __main__, as in a notebook cell (a script stands in for the kernel).
    # Before: fork workers ran the old version after the cell was edited (and a Cache
    # stored its results under the new key); spawned workers could not find it.
    script, table = tmp_path / "cells.py", tmp_path / "table.txt"
    script.write_text(NOTEBOOK_SCRIPT)
    table.write_text("1")
    completed = subprocess.run(
        [sys.executable, str(script), start_method, str(table), str(tmp_path / "cache")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    printed = completed.stdout.split("\n")[:6]
    assert printed == ["[56]", "[57]", "[57]", "[155]", "[155]", "[155]"], completed.stderr
