"""The module paths of datamultiproc 0.1.3 keep working, with a DeprecationWarning."""

from __future__ import annotations

import importlib

import pytest

import datamultiproc

OLD_NAMES = [
    ("datamultiproc.sample", "BaseSample"),
    ("datamultiproc.processor", "Processor"),
    ("datamultiproc.processor", "ProcessingError"),
    ("datamultiproc.composer", "Compose"),
    ("datamultiproc.fileio", "Save"),
    ("datamultiproc.fileio", "Cache"),
]


@pytest.mark.parametrize(("module", "name"), OLD_NAMES)
def test_old_paths_give_the_new_objects_and_name_the_new_import(module: str, name: str) -> None:
    old = importlib.import_module(module)
    with pytest.warns(DeprecationWarning, match=f"use `from datamultiproc import {name}`"):
        obj = getattr(old, name)
    assert obj is getattr(datamultiproc, name)


def test_from_import_warns_at_the_callers_line() -> None:
    with pytest.warns(DeprecationWarning, match="datamultiproc.sample") as caught:
        from datamultiproc.sample import BaseSample  # noqa: F401
    assert caught[0].filename == __file__


def test_names_0_1_3_did_not_export_are_attribute_errors() -> None:
    old = importlib.import_module("datamultiproc.fileio")
    with pytest.raises(AttributeError, match=r"deprecated 0\.1\.3 path of Cache, Save"):
        old.get_filename  # noqa: B018
