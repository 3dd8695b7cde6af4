"""notebooks/scaling-with-dask.ipynb, executed in a real kernel, with assertions on its outputs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.notebook.conftest import (  # the notebook tests' kernel spec and output helpers
    cell,
    execute_notebook,
    jupyter_path,  # noqa: F401 (a fixture)
    text,
    widget_states,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600), pytest.mark.usefixtures("jupyter_path")]

SAMPLES = 400


def test_scaling_with_dask(tmp_path: Path) -> None:
    nb = execute_notebook("scaling-with-dask.ipynb", tmp_path)

    assert re.search(
        rf"process backend: {SAMPLES} samples in [\d.]+ s", text(cell(nb, "process-run"))
    )
    assert "workers: 2" in text(cell(nb, "cluster"))
    dask_run = text(cell(nb, "dask-run"))
    assert re.search(rf"dask backend: {SAMPLES} samples in [\d.]+ s", dask_run)
    assert "backend='dask'" in dask_run

    compare = text(cell(nb, "compare"))
    assert "results equal: True" in compare
    assert re.search(r"process\s+[\d.]+\s+\d+", compare)
    assert re.search(r"dask\s+[\d.]+\s+\d+", compare)
    assert "Dask workers used: 2" in text(cell(nb, "workers"))
    assert text(cell(nb, "cache")).splitlines() == [
        f"first run: 0/{SAMPLES} cache hits, results equal: True",
        f"rerun: {SAMPLES}/{SAMPLES} cache hits, results equal: True",
    ]

    # Both runs showed the live progress panel, which ended green at the total.
    bars = widget_states(nb, "datamultiproc-progress-bar")
    assert [(b["value"], b["max"], b["bar_style"]) for b in bars] == [
        (SAMPLES, SAMPLES, "success")
    ] * 2
