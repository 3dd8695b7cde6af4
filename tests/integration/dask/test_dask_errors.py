"""Asking for the Dask backend without ``distributed``, without a client, or with a bad value."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from datamultiproc import MissingDependencyError, run
from tests.helpers import AddStep, number_samples

ROOT = Path(__file__).resolve().parents[3]


def test_without_distributed_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import datamultiproc.execution
    import datamultiproc.execution._dask as loaded

    # Import the backend module afresh, as without distributed; put the real one back after.
    monkeypatch.setattr(datamultiproc.execution, "_dask", loaded)
    monkeypatch.delitem(sys.modules, "datamultiproc.execution._dask")
    monkeypatch.setitem(sys.modules, "distributed", None)  # makes `import distributed` fail
    with pytest.raises(MissingDependencyError, match=r'pip install "datamultiproc\[dask\]"'):
        run(AddStep(), number_samples(3), backend="dask", progress=False)


@pytest.mark.slow  # needs the dask extra: the check runs once distributed is imported
def test_a_cluster_is_not_a_client() -> None:
    class LocalCluster:  # what a user might pass by mistake
        __module__ = "distributed.deploy.local"

    with pytest.raises(TypeError, match=r"backend must be .dask. or a distributed\.Client"):
        run(AddStep(), number_samples(3), backend=LocalCluster(), progress=False)


CHILD = textwrap.dedent(
    """
    import json, sys
    import datamultiproc
    from tests.helpers import AddStep, number_samples

    imported = "distributed" in sys.modules
    try:
        datamultiproc.run(AddStep(), number_samples(3), backend="dask", progress=False)
    except ValueError as exc:
        error = str(exc)
    print(json.dumps({"imported_on_import": imported, "error": error}))
    """
)


@pytest.mark.slow
def test_no_client_is_a_clear_error_and_import_stays_light() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    completed = subprocess.run(
        [sys.executable, "-c", CHILD],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    out = json.loads(completed.stdout.strip().splitlines()[-1])
    assert out["imported_on_import"] is False
    assert "needs a running distributed.Client" in out["error"]
    assert "backend=client" in out["error"]


def test_storage_directories_are_found_in_nested_steps(tmp_path: Path) -> None:
    from datamultiproc import Cache, Compose, Save
    from datamultiproc.execution._dask import storage_directories

    inner = Compose(AddStep(), Cache(processor=AddStep(), cache_dir=tmp_path / "inner"))
    pipeline = Compose(
        Cache(processor=inner, cache_dir=tmp_path / "outer"), Save(save_to_dir="out")
    )
    assert storage_directories(pipeline) == {
        str(tmp_path / "inner"),
        str(tmp_path / "outer"),
        "out",
    }
