"""The notebook layer's public names, and that importing datamultiproc stays light."""

from __future__ import annotations

import subprocess
import sys

import datamultiproc.notebook


def test_notebook_all_is_sorted_complete_and_owned() -> None:
    names = datamultiproc.notebook.__all__
    assert names == sorted(names)
    public = {
        name
        for name, value in vars(datamultiproc.notebook).items()
        if not name.startswith("_") and callable(value)
    }
    assert public == set(names)
    for name in names:
        assert getattr(datamultiproc.notebook, name).__module__ == "datamultiproc.notebook"


def test_importing_datamultiproc_and_showing_a_result_loads_no_pandas_or_widgets() -> None:
    code = (
        "import sys, datamultiproc, datamultiproc.notebook\n"
        "from datamultiproc.execution import RunResult\n"
        "repr(RunResult()); RunResult()._repr_html_()\n"
        "print(sorted(m for m in ('pandas', 'ipywidgets', 'IPython', 'tqdm') if m in sys.modules))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert completed.stdout.strip() == "[]"
