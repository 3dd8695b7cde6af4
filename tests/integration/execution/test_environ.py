"""Warm workers see what the notebook changed in its environment.

A worker copies the environment variables, the working directory and ``sys.path``
when it starts: before, a notebook that set ``os.environ["X"]`` (or deleted it), or
ran ``os.chdir``, between two runs got the old value, or the same relative path in
the old directory, from warm workers without a word, where the sequential backend saw
the change; and a folder added to ``sys.path`` later was missing in them.
"""

from __future__ import annotations

import concurrent.futures as cf
import decimal
import multiprocessing
import os
import sys
import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from datamultiproc import run
from datamultiproc.exceptions import FailuresWarning
from datamultiproc.execution import MultiprocessBackend
from datamultiproc.execution._pool import shutdown_pools
from tests.helpers import (
    AddFromEnvironment,
    AddFromFile,
    AddFromRelativeFile,
    Calculate,
    number_samples,
)

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


@pytest.fixture
def folders(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """Two folders, each with its own ``value.txt`` (1 and 2); the directory restored after."""
    first, second = tmp_path / "first", tmp_path / "second"
    for folder, value in ((first, "1"), (second, "2")):
        folder.mkdir()
        (folder / "value.txt").write_text(value)
    before = os.getcwd()
    yield first, second
    os.chdir(before)


@pytest.mark.parametrize("start_method", ["fork", "spawn", "forkserver"])
def test_warm_workers_follow_the_notebooks_working_directory(
    folders: tuple[Path, Path], start_method: str
) -> None:
    shutdown_pools()
    backend = MultiprocessBackend(2, start_method=start_method, inline=False)
    for steps in (
        [AddFromRelativeFile(path="value.txt")],  # read by process()
        [AddFromFile(path="value.txt")],  # read by setup()
    ):
        for folder, gain in ((folders[0], 1), (folders[1], 2), (folders[0], 1)):
            os.chdir(folder)
            result = run(steps[0], number_samples(20), backend=backend, progress=False)
            assert [s.data for s in result] == [i + gain for i in range(20)], (steps, folder)
    shutdown_pools()


def test_an_executors_workers_follow_the_notebooks_working_directory(
    folders: tuple[Path, Path],
) -> None:
    with cf.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as executor:
        for folder, gain in ((folders[0], 1), (folders[1], 2)):
            os.chdir(folder)
            step = AddFromRelativeFile(path="value.txt")
            result = run(step, number_samples(20), backend=executor, progress=False)
            assert [s.data for s in result] == [i + gain for i in range(20)]


LATE_MODULE = """
from datamultiproc import Processor

class AddLate(Processor):
    def process(self, sample):
        from {name}_table import ADD  # a module of the same folder, imported when needed

        sample.data = sample.data + ADD
        return sample
"""


def check_a_late_folder(folder: Path, backend: Any) -> None:
    """Add ``folder`` to ``sys.path`` (after ``backend``'s workers started), use a module there."""
    folder.mkdir()
    name = folder.name
    (folder / f"{name}.py").write_text(textwrap.dedent(LATE_MODULE.format(name=name)))
    (folder / f"{name}_table.py").write_text("ADD = 7\n")
    sys.path.insert(0, str(folder))
    try:
        module = __import__(name)
        result = run(module.AddLate(), number_samples(20), backend=backend, progress=False)
        assert result.n_failed == 0, result.failures
        assert [s.data for s in result] == [i + 7 for i in range(20)]
    finally:
        sys.path.remove(str(folder))
        for module_name in (name, f"{name}_table"):
            sys.modules.pop(module_name, None)


@pytest.mark.parametrize("start_method", ["fork", "spawn", "forkserver", "executor"])
def test_a_folder_added_to_sys_path_after_the_workers_started_reaches_them(
    tmp_path: Path, start_method: str
) -> None:
    shutdown_pools()
    backend: Any
    if start_method == "executor":
        backend = cf.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))
    else:
        backend = MultiprocessBackend(2, start_method=start_method, inline=False)
    try:
        warm = run(AddFromEnvironment(variable=VARIABLE), number_samples(4), backend=backend)
        assert warm.n_failed == 0
        check_a_late_folder(tmp_path / f"late_{start_method}", backend)
    finally:
        if isinstance(backend, cf.Executor):
            backend.shutdown()
        shutdown_pools()


@pytest.fixture
def calculation_settings() -> Iterator[None]:
    errors, context = np.geterr(), decimal.getcontext().copy()
    yield
    np.seterr(**errors)
    decimal.setcontext(context)


def check_calculation_settings(backend: Any) -> None:
    """The notebook's numpy error handling and decimal precision hold where samples run."""
    np.seterr(divide="raise")  # to catch bad samples
    decimal.getcontext().prec = 50
    digits = len(str(decimal.Decimal(1) / decimal.Decimal(7)))
    with pytest.warns(FailuresWarning):
        result = run(Calculate(divide=True), number_samples(12), backend=backend, progress=False)
    assert {f.error_type for f in result.failures} == {"FloatingPointError"}
    assert len(result.failures) == 12
    result = run(Calculate(), number_samples(12), backend=backend, progress=False)
    assert [s.data for s in result] == [digits] * 12
    np.seterr(divide="warn")
    decimal.getcontext().prec = 28
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = run(Calculate(divide=True), number_samples(12), backend=backend, progress=False)
    assert [s.data for s in result] == [len(str(decimal.Decimal(1) / decimal.Decimal(7))) + 1] * 12


@pytest.mark.usefixtures("calculation_settings")
@pytest.mark.parametrize(
    "backend", ["sequential", "thread", "fork", "spawn", "forkserver", "executor"]
)
def test_numpy_error_handling_and_the_decimal_context_hold_in_workers(backend: str) -> None:
    shutdown_pools()
    if backend == "executor":
        with cf.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
            check_calculation_settings(pool)
    elif backend in ("sequential", "thread"):
        check_calculation_settings(backend)
    else:
        check_calculation_settings(MultiprocessBackend(2, start_method=backend, inline=False))
    shutdown_pools()
