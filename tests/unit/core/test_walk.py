"""walk: every step of a pipeline, nested ones included, with the steps before it."""

from __future__ import annotations

from pathlib import Path

from datamultiproc import Cache, Compose, Save
from datamultiproc.core import StepPosition, walk
from datamultiproc.storage._keys import key_leaves
from tests.helpers import AddStep, DoubleStep


def names(steps: tuple[object, ...]) -> list[str]:
    return [repr(step) for step in steps]


def test_walk_yields_each_step_with_the_steps_run_before_it(tmp_path: Path) -> None:
    add, double, save = AddStep(step_size=1), DoubleStep(), Save(save_to_dir=tmp_path / "s")
    inner = Compose(add, double)
    cache = Cache(processor=inner, cache_dir=tmp_path / "c")
    last = AddStep(step_size=3)
    pipeline = Compose(save, cache, last)
    positions = list(walk(pipeline))
    assert all(isinstance(p, StepPosition) for p in positions)
    got = [(p.step, p.upstream) for p in positions]
    assert got == [
        (pipeline, ()),
        (save, ()),
        (cache, (save,)),
        (inner, (save,)),  # a Cache passes its own upstream to what it wraps
        (add, (save,)),
        (double, (save, add)),
        (last, (save, cache)),  # a Compose passes its direct steps on
    ]


def test_walk_starts_from_the_given_upstream() -> None:
    first, second = AddStep(), DoubleStep()
    assert [p.upstream for p in walk(second, (first,))] == [(first,)]


def test_key_leaves_flatten_composes_see_through_caches_and_skip_saves(tmp_path: Path) -> None:
    add, double, last = AddStep(), DoubleStep(), AddStep(step_size=2)
    pipeline = Compose(
        Save(save_to_dir=tmp_path),
        Cache(
            processor=Compose(add, Cache(processor=double, cache_dir=tmp_path)), cache_dir=tmp_path
        ),
        last,
    )
    assert key_leaves((pipeline,)) == (add, double, last)
    assert key_leaves((Save(save_to_dir=tmp_path),)) == ()


def test_steps_name_their_storage_directories(tmp_path: Path) -> None:
    assert AddStep().storage_directories() == ()
    assert Save(save_to_dir=tmp_path).storage_directories() == (str(tmp_path),)
    assert Cache(processor=AddStep(), cache_dir=tmp_path).storage_directories() == (str(tmp_path),)
