"""Warm workers read the data of the user's modules as the notebook has it now.

A notebook that sets ``utils.THRESHOLD = 0.9`` or changes ``utils.TABLE["add"] = 2`` in
place changes nothing in a worker that imported ``utils`` earlier (or a spawned one that
imports the file afresh): before, warm workers went on reading the old values without a
word, where the sequential backend read the new ones.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
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


@pytest.fixture
def user_module(tmp_path: Path) -> Iterator[ModuleType]:
    with usercode.user_module(tmp_path, usercode.DATA_SOURCE) as (module, _):
        yield module


def edits(module: ModuleType) -> Iterator[str]:
    """Change the module's data as a notebook would, one kind of edit at a time."""
    table, array = module.TABLE, module.ARRAY
    yield "as imported"
    module.TABLE["add"] = 2
    yield "a dict changed in place"
    module.THRESHOLD = 0.9  # type: ignore[attr-defined]
    yield "a number assigned"
    module.ARRAY[0] = 5.0
    yield "an array changed in place"
    module.Look.LIMIT = 4
    yield "a class attribute assigned"
    module.TABLE["add"], module.THRESHOLD, module.ARRAY[0] = 1, 0.5, 1.0  # type: ignore[attr-defined]
    module.Look.LIMIT = 1
    yield "everything back as imported (the first run's pipeline again)"
    # The notebook's own objects were never replaced by copies.
    assert module.TABLE is table
    assert module.ARRAY is array


def check_every_edit(module: ModuleType, backend: Any) -> None:
    """Run the module's pipeline after each edit; the results must be the notebook's."""
    for edit in edits(module):
        expected = [module.lookup(i) + 10_000_000 * module.Look.LIMIT for i in range(30)]
        result = run(module.Look(), number_samples(30), backend=backend, progress=False)
        assert [s.data for s in result] == expected, edit
        assert {r.worker for r in result.records} != {"parent"}


@pytest.mark.parametrize("start_method", ["fork", "spawn", "forkserver"])
def test_warm_workers_read_the_modules_data_as_the_notebook_has_it(
    user_module: ModuleType, start_method: str
) -> None:
    shutdown_pools()
    backend = MultiprocessBackend(2, start_method=start_method, inline=False)
    check_every_edit(user_module, backend)
    shutdown_pools()


def test_an_executors_workers_read_the_modules_data_as_the_notebook_has_it(
    user_module: ModuleType,
) -> None:
    with cf.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as executor:
        check_every_edit(user_module, executor)


def test_data_in_a_helper_module_that_imported_it_by_name(tmp_path: Path) -> None:
    # helpers.py does `from settings import LIMITS`: the name the code reads is the
    # helper module's own, and that is the one set in the workers.
    settings = "LIMITS = {'high': 10}\n"
    with usercode.user_module(tmp_path, settings) as (settings_module, _):
        helper = (
            f"from {settings_module.__name__} import LIMITS\n"
            "from datamultiproc import Processor\n"
            "class Clip(Processor):\n"
            "    def process(self, sample):\n"
            "        sample.data = min(sample.data, LIMITS['high'])\n"
            "        return sample\n"
        )
        with usercode.user_module(tmp_path, helper) as (helper_module, _):
            backend = MultiprocessBackend(2, start_method="spawn", inline=False)
            first = run(helper_module.Clip(), number_samples(30), backend=backend, progress=False)
            assert max(s.data for s in first) == 10
            helper_module.LIMITS["high"] = 20  # the notebook edits the helper's dict
            second = run(helper_module.Clip(), number_samples(30), backend=backend, progress=False)
            assert max(s.data for s in second) == 20
    shutdown_pools()
