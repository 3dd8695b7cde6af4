"""The public API is exactly what __all__ lists, sorted, and every name is documented."""

from __future__ import annotations

import pickle

import cloudpickle
import dill
import pytest

import datamultiproc
from datamultiproc import exceptions
from tests.helpers import AddStep


def test_all_is_sorted_and_complete() -> None:
    names = datamultiproc.__all__
    assert names == sorted(names)
    public = {name for name in vars(datamultiproc) if not name.startswith("_")}
    submodules = {"core", "storage", "execution", "exceptions", "notebook", "demo"}
    submodules |= {"sample", "processor", "composer", "fileio"}  # 0.1.3 paths, deprecated
    assert public - submodules - {"annotations", "Iterable", "Literal", "TYPE_CHECKING"} == set(
        names
    ) - {"__version__"}


def test_seed_imports_work() -> None:
    # The design document's imports, used together as it uses them.
    from datamultiproc import BaseSample, Cache, Compose, ProcessingError, Processor, Save

    class Sample(BaseSample):
        data: int

    class AddOne(Processor):
        def process(self, sample: Sample) -> Sample:
            sample.data += 1
            return sample

    assert all(issubclass(step, Processor) for step in (Cache, Compose, Save))
    assert issubclass(ProcessingError, datamultiproc.DatamultiprocError)
    pipeline = Compose(AddOne(), AddOne())
    result = pipeline.run([Sample(id="a", data=1)], backend="sequential", progress=False)
    assert [sample.data for sample in result] == [3]
    assert result.samples[0].processing_history == [("AddOne", ""), ("AddOne", "")]


def test_without_a_registered_runner_processor_run_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from datamultiproc.core import _services

    monkeypatch.setattr(_services._runner, "_value", [])
    with pytest.raises(exceptions.ExecutionError, match="no runner registered: import"):
        AddStep().run([], backend="sequential", progress=False)


def test_without_registered_views_the_frames_say_what_to_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from datamultiproc.execution import _services

    monkeypatch.setattr(_services._views, "_value", [])
    monkeypatch.setattr(_services._display, "_value", [])
    with pytest.raises(exceptions.ExecutionError, match="no DataFrame views registered"):
        datamultiproc.RunResult().history()
    with pytest.raises(exceptions.ExecutionError, match="no progress display registered"):
        AddStep().run([], backend="sequential", progress="text")


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
