"""Warm workers never run stale user code: a user module edited and reloaded between runs.

A module is written to a temporary folder (as ``utils.py`` beside a notebook would
be), run through real worker processes, edited and reloaded, and run again on the
same warm pool, with and without a Cache, under fork and spawn.
"""

from __future__ import annotations

import importlib
import json  # noqa: F401 (loaded, so code_state() sees it)
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy  # noqa: F401 (loaded, so code_state() sees it)
import pytest

from datamultiproc import Cache
from datamultiproc.execution._codec import encode_pipeline
from datamultiproc.execution._codestate import code_state
from datamultiproc.execution._inline import ParentRunner
from datamultiproc.execution._pool import _IDLE
from tests.helpers import number_samples

pytestmark = pytest.mark.slow

SOURCE = """
from datamultiproc import Processor

FACTOR = {factor}


def scale(value):
    return value * FACTOR


class Scale(Processor):
    def process(self, sample):
        sample.data = scale(sample.data){extra}
        return sample
"""


@pytest.fixture
def user_module(tmp_path: Path) -> Iterator[tuple[ModuleType, Path]]:
    name = f"user_utils_{uuid.uuid4().hex[:8]}"
    path = tmp_path / f"{name}.py"
    path.write_text(SOURCE.format(factor=2, extra=""))
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module(name), path
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(name, None)


def _edit(path: Path, module: ModuleType, **source: object) -> ModuleType:
    before = path.stat().st_mtime_ns
    path.write_text(SOURCE.format(**source))
    os.utime(path, ns=(before + 1_000_000_000, before + 1_000_000_000))  # coarse clocks
    return importlib.reload(module)


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
@pytest.mark.parametrize("cached", [False, True], ids=["no-cache", "cache"])
def test_reloaded_user_module_reaches_warm_workers(
    user_module: tuple[ModuleType, Path], tmp_path: Path, start_method: str, cached: bool
) -> None:
    module, path = user_module

    def pipeline() -> object:
        step = module.Scale()
        return Cache(processor=step, cache_dir=tmp_path / "cache") if cached else step

    samples = number_samples(40)
    first = pipeline().run(samples, workers=2, start_method=start_method, progress=False)
    assert [s.data for s in first] == [2 * i for i in range(40)]
    warm = _IDLE[(start_method, 2)]
    pids = {w.process.pid for w in warm.live()}

    # Unchanged: the same warm workers serve the rerun.
    again = pipeline().run(samples, workers=2, start_method=start_method, progress=False)
    assert [s.data for s in again] == [2 * i for i in range(40)]
    assert {w.process.pid for w in _IDLE[(start_method, 2)].live()} == pids

    # Edited and reloaded: the processor's own code changes (so a Cache key changes too).
    module = _edit(path, module, factor=3, extra="\n        sample.data = sample.data + 1")
    fresh = pipeline().run(samples, workers=2, start_method=start_method, progress=False)
    assert [s.data for s in fresh] == [3 * i + 1 for i in range(40)]
    assert not pids & {w.process.pid for w in _IDLE[(start_method, 2)].live()}


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_helper_edited_on_disk_and_reloaded_without_cache(
    user_module: tuple[ModuleType, Path], start_method: str
) -> None:
    module, path = user_module
    samples = number_samples(20)
    module.Scale().run(samples, workers=2, start_method=start_method, progress=False)
    module = _edit(path, module, factor=5, extra="")  # only the module constant changes
    result = module.Scale().run(samples, workers=2, start_method=start_method, progress=False)
    assert [s.data for s in result] == [5 * i for i in range(20)]


def test_code_state_changes_on_edit_reload_and_replacement(
    user_module: tuple[ModuleType, Path],
) -> None:
    module, path = user_module
    state = code_state()
    assert any(name == module.__name__ for name, *_ in state)
    assert code_state() == state
    module = _edit(path, module, factor=7, extra="")
    edited = code_state()
    assert edited != state
    sys.modules.pop(module.__name__)
    importlib.import_module(module.__name__)  # a new module object, same file
    assert code_state() != edited


def test_library_modules_are_not_user_code() -> None:
    assert {"json", "numpy", "datamultiproc.storage"} <= set(sys.modules)
    names = {name for name, *_ in code_state()}
    assert not names & {"json", "numpy", "datamultiproc", "datamultiproc.storage"}


def test_the_parents_kept_pipeline_is_not_reused_after_an_edit(
    user_module: tuple[ModuleType, Path],
) -> None:
    # The parent keeps the set-up copy of a pipeline for the next run, as warm workers
    # keep theirs; the class travels by name, so an edited one has the same bytes.
    module, path = user_module
    key, blob = encode_pipeline(module.Scale())
    first = ParentRunner(key, blob)
    assert first.run([(0, number_samples(2)[1])])[0].sample.data == 2  # type: ignore[union-attr]
    kept = first.pipeline
    first.release(keep=True)
    unchanged = ParentRunner(key, blob)
    unchanged.prepare()
    assert unchanged.pipeline is kept  # nothing changed: reused
    unchanged.release(keep=True)
    module = _edit(path, module, factor=3, extra="\n        sample.data = sample.data + 1")
    edited_key, edited_blob = encode_pipeline(module.Scale())
    assert edited_key == key
    second = ParentRunner(edited_key, edited_blob)
    assert second.run([(0, number_samples(2)[1])])[0].sample.data == 4  # type: ignore[union-attr]
    second.release(keep=False)
