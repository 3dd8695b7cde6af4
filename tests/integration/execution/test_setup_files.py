"""A kept set-up pipeline is set up again when a file its setup() read has changed.

setup() loads what samples need once per worker (a model checkpoint, a table). Warm
workers, and the calling process for the samples it runs, keep the set-up pipeline
between runs: before, after the user retrained the model or edited the table under the
same path, they went on using the old contents without a word, where the sequential
backend (which sets up at every run) used the new ones.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from datamultiproc import run
from datamultiproc.execution import MultiprocessBackend
from datamultiproc.execution._pool import shutdown_pools
from tests import usercode
from tests.helpers import AddFromFile, number_samples

pytestmark = pytest.mark.slow


def _backend(kind: str) -> Any:
    if kind == "executor":
        return cf.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))
    if kind == "parent":  # tiny samples: after the first runs the parent takes them
        return MultiprocessBackend(2)
    return MultiprocessBackend(2, start_method=kind, inline=False)


def _setups(log: Path) -> Counter[str]:
    return Counter(log.read_text().split()) if log.exists() else Counter()


@pytest.mark.parametrize("kind", ["fork", "spawn", "executor", "parent"])
def test_a_changed_file_that_setup_read_is_read_again(kind: str, tmp_path: Path) -> None:
    shutdown_pools()
    table, log = tmp_path / "table.txt", tmp_path / "setups.log"
    table.write_text("1")
    step = AddFromFile(path=str(table), log=str(log))
    backend = _backend(kind)
    count = 3000 if kind == "parent" else 40
    try:
        for value in (1, 1, 5, 5, 7):
            if table.read_text() != str(value):
                usercode.write(table, str(value))  # edited (its time moves on)
            result = run(step, number_samples(count), backend=backend, progress=False)
            assert {s.data - i for i, s in enumerate(result)} == {value}, value
            if kind == "parent":
                assert "parent" in {r.worker for r in result.records}
    finally:
        if isinstance(backend, cf.Executor):
            backend.shutdown()
        shutdown_pools()
    # Each holder set up again only after a change (and the first time), not at every run.
    assert max(_setups(log).values()) <= 3


def test_an_unchanged_file_costs_no_new_setup(tmp_path: Path) -> None:
    shutdown_pools()
    table, log = tmp_path / "table.txt", tmp_path / "setups.log"
    table.write_text("3")
    step = AddFromFile(path=str(table), log=str(log))
    backend = MultiprocessBackend(2, start_method="fork", inline=False)
    for _ in range(4):
        run(step, number_samples(40), backend=backend, progress=False)
    assert sorted(_setups(log).values()) == [1, 1]  # each worker once
    shutdown_pools()


def test_a_file_the_pipeline_writes_itself_sets_nothing_up_again(tmp_path: Path) -> None:
    # process() appends to the file its setup() read: that is no edit of the user's.
    shutdown_pools()
    table, log = tmp_path / "table.txt", tmp_path / "setups.log"
    table.write_text("2")
    step = AddFromFile(path=str(table), log=str(log), append_to=str(table))
    backend = MultiprocessBackend(2, start_method="spawn", inline=False)
    result = run(step, number_samples(200), backend=backend, progress=False)
    assert {s.data - i for i, s in enumerate(result)} == {2}
    assert sorted(_setups(log).values()) == [1, 1]
    shutdown_pools()
