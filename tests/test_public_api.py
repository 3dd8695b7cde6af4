"""The public API is exactly what __all__ lists, sorted, and every name is documented."""

from __future__ import annotations

import pickle

import cloudpickle
import dill
import pytest

import datamultiproc
from datamultiproc import exceptions


def test_all_is_sorted_and_complete() -> None:
    names = datamultiproc.__all__
    assert names == sorted(names)
    public = {name for name in vars(datamultiproc) if not name.startswith("_")}
    submodules = {"core", "storage", "execution", "exceptions", "notebook", "demo"}
    assert public - submodules - {"annotations", "Iterable", "TYPE_CHECKING"} == set(names) - {
        "__version__"
    }


def test_seed_imports_work() -> None:
    from datamultiproc import BaseSample, Cache, Compose, ProcessingError, Processor, Save  # noqa: F401


@pytest.mark.parametrize("name", [n for n in datamultiproc.__all__ if n != "__version__"])
def test_exports_claim_the_package_module_and_have_docstrings(name: str) -> None:
    obj = getattr(datamultiproc, name)
    assert obj.__module__ == "datamultiproc"
    assert obj.__doc__
    assert obj.__doc__.strip()


def test_every_exception_is_exported() -> None:
    for name in exceptions.__all__:
        error = getattr(exceptions, name)
        assert issubclass(error, (Exception, Warning))
        if issubclass(error, exceptions.DatamultiprocError) and name in datamultiproc.__all__:
            assert getattr(datamultiproc, name) is error


def test_narrowing_errors_subclass_builtins() -> None:
    assert issubclass(exceptions.NotPicklableError, TypeError)
    assert issubclass(exceptions.ExecutionError, RuntimeError)
    assert issubclass(exceptions.MissingDependencyError, ImportError)


@pytest.mark.parametrize(
    "serializer", [pickle, dill, cloudpickle], ids=["pickle", "dill", "cloudpickle"]
)
@pytest.mark.parametrize("name", [n for n in exceptions.__all__ if "Warning" not in n])
def test_errors_round_trip(serializer: object, name: str) -> None:
    error = getattr(exceptions, name)("message")
    copy = serializer.loads(serializer.dumps(error))  # type: ignore[attr-defined]
    assert type(copy) is type(error)
    assert str(copy) == "message"
