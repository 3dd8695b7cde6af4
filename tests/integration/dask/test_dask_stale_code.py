"""Warm Dask workers never run stale user code: a user module edited between two runs.

A module is written to a temporary folder on the path of the parent and of the
workers of a real ``LocalCluster`` (two worker processes), run, edited and reloaded
in the parent, and run again on the same warm workers.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from datamultiproc import Cache, Compose
from datamultiproc.exceptions import FailuresWarning
from tests import usercode
from tests.helpers import SetupLog, number_samples

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


@pytest.fixture
def user_module(dask_client: Any, tmp_path: Path) -> Iterator[tuple[ModuleType, Path]]:
    folder = str(tmp_path)  # (a bound sys.path.insert would travel as a copy of the list)
    dask_client.run(lambda: sys.path.insert(0, folder))
    try:
        with usercode.user_module(tmp_path) as module:
            yield module
    finally:
        dask_client.run(lambda: sys.path.remove(folder))


def _setups(log: Path) -> list[int]:
    return [int(pid) for pid in log.read_text().split()] if log.exists() else []


@pytest.mark.parametrize("cached", [False, True], ids=["no-cache", "cache"])
def test_an_edited_and_reloaded_module_reaches_warm_dask_workers(
    dask_client: Any, user_module: tuple[ModuleType, Path], tmp_path: Path, cached: bool
) -> None:
    module, path = user_module
    log = tmp_path / "setup.log"

    def run() -> Any:
        step = module.Scale()
        step = Cache(processor=step, cache_dir=tmp_path / "cache") if cached else step
        pipeline = Compose(SetupLog(path=str(log)), step)
        return pipeline.run(number_samples(40), backend=dask_client, chunksize=2, progress=False)

    first = run()
    assert [s.data for s in first] == [2 * i for i in range(40)]
    setups = _setups(log)
    workers = set(dask_client.run(lambda: __import__("os").getpid()).values())
    assert set(setups) <= workers

    # Unchanged: the warm workers keep their set-up pipeline (and cache hits).
    again = run()
    assert [s.data for s in again] == [2 * i for i in range(40)]
    assert _setups(log) == setups
    assert all(r.steps[1].cache_hit for r in again.records) is cached

    # Edited and reloaded in the parent: the same worker processes run the new code.
    module = usercode.edit(path, module, factor=3, extra="\n        sample.data = sample.data + 1")
    fresh = run()
    assert [s.data for s in fresh] == [3 * i + 1 for i in range(40)]
    assert not any(r.steps[1].cache_hit for r in fresh.records)  # a new key, computed
    assert set(_setups(log)) <= workers  # set up again in the same processes
    assert len(_setups(log)) == 2 * len(setups)
    assert set(dask_client.run(lambda: __import__("os").getpid()).values()) == workers
    if cached:
        hits = run()
        assert [s.data for s in hits] == [3 * i + 1 for i in range(40)]
        assert all(r.steps[1].cache_hit for r in hits.records)


def test_a_module_that_fails_to_reload_on_dask_workers_fails_every_sample(
    dask_client: Any, user_module: tuple[ModuleType, Path]
) -> None:
    module, path = user_module
    module.Scale().run(number_samples(10), backend=dask_client, progress=False)
    usercode.write(path, usercode.SOURCE.format(factor="(", extra=""))  # saved half-edited
    with pytest.warns(FailuresWarning, match="10 of 10"):
        broken = module.Scale().run(number_samples(10), backend=dask_client, progress=False)
    assert {f.error_type for f in broken.failures} == {"ReloadError"}
    assert module.__name__ in broken.failures[0].message
    module = usercode.edit(path, module, factor=7, extra="")
    fixed = module.Scale().run(number_samples(10), backend=dask_client, progress=False)
    assert [s.data for s in fixed] == [7 * i for i in range(10)]
