"""Dask workers see what the notebook changed in its environment (and only that)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from datamultiproc import run
from tests.helpers import AddFromEnvironment, number_samples
from tests.integration.execution.test_environ import (
    VARIABLE,
    calculation_settings,  # noqa: F401 (a fixture, used here too)
    check_a_late_folder,
    check_calculation_settings,
    check_every_edit,
    clean_environment,  # noqa: F401 (an autouse fixture, used here too)
)

pytestmark = pytest.mark.slow


def test_dask_workers_see_the_notebooks_environment(dask_client: Any) -> None:
    check_every_edit(dask_client)


def test_a_folder_added_to_sys_path_reaches_dask_workers(dask_client: Any, tmp_path: Path) -> None:
    check_a_late_folder(tmp_path / "late_dask", dask_client)


@pytest.mark.usefixtures("calculation_settings")
def test_dask_workers_use_the_notebooks_calculation_settings(dask_client: Any) -> None:
    check_calculation_settings(dask_client)


def test_dask_workers_keep_their_own_variables(dask_client: Any) -> None:
    # A worker's own setting (as a remote machine has its own PATH and HOME) stays.
    dask_client.run(_set, "DATAMULTIPROC_TEST_WORKERS_OWN", "w")
    try:
        os.environ[VARIABLE] = "3"
        result = run(AddFromEnvironment(variable=VARIABLE), number_samples(8), backend=dask_client)
        assert [s.data for s in result] == [i + 3 for i in range(8)]
        seen = dask_client.run(_get, "DATAMULTIPROC_TEST_WORKERS_OWN")
        assert set(seen.values()) == {"w"}
    finally:
        dask_client.run(_set, "DATAMULTIPROC_TEST_WORKERS_OWN", None)


def _set(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def _get(name: str) -> str | None:
    return os.environ.get(name)
