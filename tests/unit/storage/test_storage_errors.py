"""Storage errors: atomic write_file, and unusable folders raise StorageError naming them.

Tests run as root, where chmod does not stop writes: a read-only folder and a full
disk are real tmpfs mounts (skipped where mounting is not allowed).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest

from datamultiproc import BaseSample, Cache, Save, StorageError
from tests.unit.storage._types import ArraySample, CountedAdd, NumberSample


def _mount(target: Path, options: str) -> bool:
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs: writing more fails with ENOSPC."""
    target = tmp_path / "tiny"
    if os.geteuid() != 0 or not _mount(target, "size=64k"):
        pytest.skip("needs root and mount to make a full disk")
    yield target
    subprocess.run(["umount", "-l", str(target)], check=False)


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A read-only tmpfs: even root cannot write in it."""
    target = tmp_path / "ro"
    if os.geteuid() != 0 or not _mount(target, "ro,size=64k"):
        pytest.skip("needs root and mount to make a read-only folder")
    yield target
    subprocess.run(["umount", "-l", str(target)], check=False)


def _big() -> ArraySample:
    return ArraySample(id="big", array=np.ones(100_000))


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


def test_write_file_is_atomic_and_handles_a_class_defined_in_a_function(tmp_path: Path) -> None:
    class Local(BaseSample):  # plain pickle cannot reach this class by name
        value: int

    path = Local(id="a", value=3).write_file(tmp_path / "a.pickle")
    loaded = BaseSample.read_file(path)
    assert type(loaded).__qualname__.endswith("Local")
    assert cast(Any, loaded).value == 3  # a class rebuilt from the file: fields unknown to mypy
    assert _leftovers(tmp_path) == ["a.pickle"]


def test_write_file_replaces_an_old_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "s.pkl"
    NumberSample(id="s", data=1).write_file(path)
    NumberSample(id="s", data=2).write_file(path)
    assert NumberSample.read_file(path).data == 2
    assert _leftovers(tmp_path) == ["s.pkl"]


def test_write_file_failure_names_the_path_and_leaves_no_file(tmp_path: Path) -> None:
    class Unpicklable(BaseSample):
        handle: object

    path = tmp_path / "u.pickle"
    with open(__file__, "rb") as handle, pytest.raises(StorageError, match=r"u\.pickle"):
        Unpicklable(id="u", handle=handle).write_file(path)
    assert _leftovers(tmp_path) == []


def test_write_file_on_a_full_disk_raises_and_leaves_no_file(tiny_disk: Path) -> None:
    with pytest.raises(StorageError, match=r"big\.pickle") as info:
        _big().write_file(tiny_disk / "big.pickle")
    assert isinstance(info.value.__cause__, OSError)
    assert _leftovers(tiny_disk) == []


def test_write_file_with_a_file_in_the_way(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("a file, not a folder")
    with pytest.raises(StorageError, match="blocker"):
        NumberSample(id="s", data=1).write_file(tmp_path / "blocker" / "s.pkl")


@pytest.mark.parametrize("kind", ["cache", "save"])
def test_a_file_where_the_folder_should_be_raises_storage_error(tmp_path: Path, kind: str) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    step = (
        Cache(processor=CountedAdd(), cache_dir=blocker)
        if kind == "cache"
        else Save(save_to_dir=blocker)
    )
    with pytest.raises(StorageError, match="blocker") as info:
        step(NumberSample(id="s", data=1))
    assert not isinstance(info.value, PermissionError)


@pytest.mark.parametrize("kind", ["cache", "save"])
def test_a_read_only_folder_raises_storage_error_naming_it(read_only_dir: Path, kind: str) -> None:
    step = (
        Cache(processor=CountedAdd(), cache_dir=read_only_dir)
        if kind == "cache"
        else Save(save_to_dir=read_only_dir)
    )
    with pytest.raises(StorageError, match=str(read_only_dir)) as info:
        step(NumberSample(id="s", data=1))
    assert isinstance(info.value.__cause__, OSError)


@pytest.mark.parametrize("kind", ["cache", "save"])
def test_a_full_disk_raises_storage_error_and_leaves_no_partial_file(
    tiny_disk: Path, kind: str
) -> None:
    from tests.unit.storage._types import ScaleArray

    step = (
        Cache(processor=ScaleArray(), cache_dir=tiny_disk)
        if kind == "cache"
        else Save(save_to_dir=tiny_disk)
    )
    with pytest.raises(StorageError, match=str(tiny_disk)):
        step(_big())
    assert not [name for name in _leftovers(tiny_disk) if name.endswith((".pickle", ".part"))]
