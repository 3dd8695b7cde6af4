"""Dask workers clear a ``functools`` cache the notebook cleared."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.integration.execution.test_memo_caches import (
    cached_table,  # noqa: F401 (the fixture, used here too)
    check_a_cleared_cache,
)

pytestmark = pytest.mark.slow


def test_dask_workers_clear_a_cache_the_notebook_cleared(
    cached_table: tuple[ModuleType, Path, Path],  # noqa: F811
    dask_client: Any,
) -> None:
    check_a_cleared_cache(*cached_table, dask_client)
