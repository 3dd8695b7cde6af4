"""Dask workers read the data of the user's modules as the notebook has it now."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests import usercode
from tests.integration.execution.test_module_data import check_every_edit

pytestmark = pytest.mark.slow


@pytest.fixture
def user_module(tmp_path: Path) -> Iterator[ModuleType]:
    with usercode.user_module(tmp_path, usercode.DATA_SOURCE) as (module, _):
        yield module


def test_dask_workers_read_the_modules_data_as_the_notebook_has_it(
    user_module: ModuleType, dask_client: Any
) -> None:
    # The cluster started before the module's folder joined sys.path: the pipeline
    # brings the folder along (see _environ).
    check_every_edit(user_module, dask_client)
