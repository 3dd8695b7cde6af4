"""Warm workers never run stale user code: a user module edited and reloaded between runs.

A module is written to a temporary folder (as ``utils.py`` beside a notebook would
be), run through real worker processes, edited and reloaded, and run again on the
same warm pool, with and without a Cache, under fork and spawn.
"""

from __future__ import annotations

import concurrent.futures as cf
import importlib
import json  # noqa: F401 (loaded, so code_state() sees it)
import multiprocessing
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy  # noqa: F401 (loaded, so code_state() sees it)
import pytest

from datamultiproc import Cache, Compose, Processor
from datamultiproc.exceptions import FailuresWarning
from datamultiproc.execution._codec import encode_pipeline
from datamultiproc.execution._codestate import code_state
from datamultiproc.execution._inline import ParentRunner
from datamultiproc.execution._pool import _IDLE
from tests import usercode
from tests.helpers import SetupLog, SlowStep, number_samples

pytestmark = pytest.mark.slow


@pytest.fixture
def user_module(tmp_path: Path) -> Iterator[tuple[ModuleType, Path]]:
    with usercode.user_module(tmp_path) as module:
        yield module


_edit = usercode.edit


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
@pytest.mark.parametrize("cached", [False, True], ids=["no-cache", "cache"])
def test_reloaded_user_module_reaches_warm_workers(
    user_module: tuple[ModuleType, Path], tmp_path: Path, start_method: str, cached: bool
) -> None:
    module, path = user_module

    def pipeline() -> Processor:
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
    # Only code changes (a changed FACTOR would travel with the pipeline, changing its key).
    module = _edit(path, module, factor=2, extra="\n        sample.data = sample.data + 1")
    edited_key, edited_blob = encode_pipeline(module.Scale())
    assert edited_key == key
    second = ParentRunner(edited_key, edited_blob)
    assert second.run([(0, number_samples(2)[1])])[0].sample.data == 3  # type: ignore[union-attr]
    second.release(keep=False)


# --- a user's own executor: its worker processes stay warm, they reload instead --------


def _setups(log: Path) -> list[int]:
    return [int(pid) for pid in log.read_text().split()] if log.exists() else []


def _set_up_once_each(log: Path) -> bool:
    setups = _setups(log)
    return bool(setups) and len(setups) == len(set(setups))


@pytest.mark.parametrize("context", ["fork", "spawn"])
@pytest.mark.parametrize("cached", [False, True], ids=["no-cache", "cache"])
def test_a_warm_process_pool_executor_runs_the_reloaded_module(
    user_module: tuple[ModuleType, Path], tmp_path: Path, context: str, cached: bool
) -> None:
    module, path = user_module
    log = tmp_path / "setup.log"

    def run(executor: cf.Executor) -> Any:
        step = module.Scale()
        step = Cache(processor=step, cache_dir=tmp_path / "cache") if cached else step
        pipeline = Compose(SetupLog(path=str(log)), step)
        return pipeline.run(number_samples(40), backend=executor, chunksize=2, progress=False)

    with cf.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context(context)) as executor:
        first = run(executor)
        assert [s.data for s in first] == [2 * i for i in range(40)]
        # Under load an executor may hand every chunk of a run to one worker: the other
        # sets the pipeline up in the first run it takes part in. No worker does it twice.
        assert _set_up_once_each(log)

        # Unchanged: the warm workers keep their set-up pipeline (and cache hits).
        again = run(executor)
        assert [s.data for s in again] == [2 * i for i in range(40)]
        assert _set_up_once_each(log)
        assert all(r.steps[1].cache_hit for r in again.records) is cached

        # Another module of the user's imported here: nothing in the workers changes.
        (tmp_path / "elsewhere").mkdir()
        with usercode.user_module(tmp_path / "elsewhere"):
            run(executor)
        assert _set_up_once_each(log)
        before = _setups(log)

        # Edited and reloaded in the parent: the same workers run the new code.
        module = _edit(path, module, factor=3, extra="\n        sample.data = sample.data + 1")
        fresh = run(executor)
        assert [s.data for s in fresh] == [3 * i + 1 for i in range(40)]
        workers = {r.worker for r in first.records} | {r.worker for r in fresh.records}
        assert len(workers) <= 2  # warm: no new processes
        assert not any(r.steps[1].cache_hit for r in fresh.records)  # a new key, computed
        # Set up again, once by each worker that ran a chunk since.
        ran = {int(r.worker.rsplit("-", 1)[1]) for r in fresh.records}
        assert sorted(_setups(log)[len(before) :]) == sorted(ran)
        if cached:
            hits = run(executor)
            assert [s.data for s in hits] == [3 * i + 1 for i in range(40)]
            assert all(r.steps[1].cache_hit for r in hits.records)


@pytest.mark.parametrize("context", ["fork", "forkserver", "spawn"])
def test_a_worker_that_ran_nothing_before_an_edit_runs_the_new_code(
    user_module: tuple[ModuleType, Path], context: str
) -> None:
    # An executor forks all its workers at its first task; a worker that got no chunk
    # until after the edit holds the module as the parent had it at the fork.
    module, path = user_module
    with cf.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context(context)) as executor:
        first = module.Scale().run(number_samples(1), backend=executor, progress=False)
        assert [s.data for s in first] == [0]
        module = _edit(path, module, factor=3, extra="\n        sample.data = sample.data + 1")
        # Slow enough per chunk that both workers take chunks.
        pipeline = Compose(SlowStep(seconds=0.02), module.Scale())
        fresh = pipeline.run(number_samples(40), backend=executor, chunksize=2, progress=False)
        assert [s.data for s in fresh] == [3 * (i + 1) + 1 for i in range(40)]
        assert len({r.worker for r in fresh.records}) == 2
        assert len({r.worker for r in first.records} | {r.worker for r in fresh.records}) == 2


def test_a_helper_module_edited_under_an_unchanged_one_reaches_the_workers(
    tmp_path: Path,
) -> None:
    # utils does `from <helper> import scale` and defines the processor; only the helper
    # module's file changes (the user reloads both, as %autoreload would update both).
    with (
        usercode.user_module(tmp_path) as (helper, helper_path),
        usercode.user_module(tmp_path, UTILS.format(helper=helper.__name__)) as (utils, _),
        cf.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as executor,
    ):
        first = utils.Scale().run(number_samples(10), backend=executor, progress=False)
        assert [s.data for s in first] == [2 * i for i in range(10)]
        # The function's code changes (not only a global it reads).
        source = usercode.SOURCE.format(factor=2, extra="")
        usercode.write(helper_path, source.replace("value * FACTOR", "value * FACTOR + 1"))
        importlib.reload(helper)
        importlib.reload(utils)
        fresh = utils.Scale().run(number_samples(10), backend=executor, progress=False)
        assert [s.data for s in fresh] == [2 * i + 1 for i in range(10)]


UTILS = """
from datamultiproc import Processor
from {helper} import scale


class Scale(Processor):
    def process(self, sample):
        sample.data = scale(sample.data)
        return sample
"""


def test_a_module_that_fails_to_reload_in_the_workers_fails_every_sample(
    user_module: tuple[ModuleType, Path],
) -> None:
    module, path = user_module
    with cf.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as executor:
        module.Scale().run(number_samples(10), backend=executor, progress=False)
        # Saved half-edited, not reloaded in the parent: the workers would read the file.
        usercode.write(path, usercode.SOURCE.format(factor="(", extra=""))
        with pytest.warns(FailuresWarning, match="10 of 10"):
            broken = module.Scale().run(number_samples(10), backend=executor, progress=False)
        assert {f.error_type for f in broken.failures} == {"ReloadError"}
        assert module.__name__ in broken.failures[0].message
        assert "SyntaxError" in broken.failures[0].message
        # Fixed on disk (still not reloaded here): the workers run what the file says.
        usercode.write(path, usercode.SOURCE.format(factor=7, extra=""))
        fixed = module.Scale().run(number_samples(10), backend=executor, progress=False)
        assert [s.data for s in fixed] == [7 * i for i in range(10)]


class _InProcessExecutor(cf.Executor):
    """Runs each task at once in this process, pickled like any other executor's."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
        future: cf.Future[Any] = cf.Future()
        future.set_result(fn(*args, **kwargs))
        return future


def test_an_executor_in_this_process_drops_its_pipeline_but_never_reloads_here(
    user_module: tuple[ModuleType, Path],
) -> None:
    module, path = user_module
    executor = _InProcessExecutor()
    first = module.Scale().run(number_samples(5), backend=executor, progress=False)
    assert [s.data for s in first] == [2 * i for i in range(5)]
    plus_one = "\n        sample.data = sample.data + 1"  # the class's own code changes
    module = _edit(path, module, factor=3, extra=plus_one)  # reloaded by the user: used
    edited = module.Scale().run(number_samples(5), backend=executor, progress=False)
    assert [s.data for s in edited] == [3 * i + 1 for i in range(5)]
    usercode.write(path, usercode.SOURCE.format(factor=9, extra=""))  # not reloaded here
    again = module.Scale().run(number_samples(5), backend=executor, progress=False)
    assert [s.data for s in again] == [3 * i + 1 for i in range(5)]  # the session's code
    assert module.FACTOR == 3
