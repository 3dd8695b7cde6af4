"""Warm workers see the environment variables the notebook changed.

A worker copies the environment when it starts: before, a notebook that set
``os.environ["X"]`` (or deleted it) between two runs got the old value from warm
workers without a word, where the sequential backend read the new one.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
from collections.abc import Iterator
from typing import Any

import pytest

from datamultiproc import run
from datamultiproc.execution import MultiprocessBackend
from datamultiproc.execution._pool import shutdown_pools
from tests.helpers import AddFromEnvironment, number_samples

pytestmark = pytest.mark.slow

VARIABLE = "DATAMULTIPROC_TEST_ADD"


@pytest.fixture(autouse=True)
def clean_environment() -> Iterator[None]:
    yield
    for name in (VARIABLE, f"{VARIABLE}_SETUP"):
        os.environ.pop(name, None)


def edits() -> Iterator[tuple[str, int]]:
    """Change the environment as a notebook would; yield what a sample should gain."""
    yield "unset", 0
    os.environ[VARIABLE] = "100"
    yield "set", 100
    os.environ[VARIABLE] = "200"
    yield "changed", 200
    os.environ[f"{VARIABLE}_SETUP"] = "5000"
    yield "read by setup()", 5200
    del os.environ[VARIABLE]
    yield "deleted", 5000
    del os.environ[f"{VARIABLE}_SETUP"]
    yield "both deleted", 0


def check_every_edit(backend: Any) -> None:
    for edit, gain in edits():
        result = run(
            AddFromEnvironment(variable=VARIABLE),
            number_samples(20),
            backend=backend,
            progress=False,
        )
        assert [s.data for s in result] == [i + gain for i in range(20)], edit
        assert {r.worker for r in result.records} != {"parent"}
        # The notebook's own environment is what it set.
        assert os.environ.get(VARIABLE) == (None if gain % 1000 == 0 else str(gain % 1000))


@pytest.mark.parametrize("start_method", ["fork", "spawn", "forkserver"])
def test_warm_workers_see_the_notebooks_environment(start_method: str) -> None:
    shutdown_pools()
    check_every_edit(MultiprocessBackend(2, start_method=start_method, inline=False))
    shutdown_pools()


def test_a_variable_set_before_the_workers_started_and_deleted_later_is_gone() -> None:
    shutdown_pools()
    os.environ[VARIABLE] = "7"
    backend = MultiprocessBackend(2, start_method="fork", inline=False)
    first = run(AddFromEnvironment(variable=VARIABLE), number_samples(4), backend=backend)
    assert [s.data for s in first] == [7, 8, 9, 10]
    del os.environ[VARIABLE]
    second = run(AddFromEnvironment(variable=VARIABLE), number_samples(4), backend=backend)
    assert [s.data for s in second] == [0, 1, 2, 3]
    shutdown_pools()


def test_an_executors_workers_see_the_notebooks_environment() -> None:
    with cf.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as executor:
        check_every_edit(executor)
