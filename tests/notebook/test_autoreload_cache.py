"""A real kernel with ``%autoreload 2``: editing a user module never serves a stale cache hit."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]

SETUP = """
%load_ext autoreload
%autoreload 2
import sys
sys.path.insert(0, {workdir!r})
from datamultiproc import BaseSample, Cache, Compose, Processor
import steps

class Item(BaseSample):
    value: int = 0

cache = Cache(processor=steps.Step(), cache_dir={cache!r})
"""
RUN = "print('VALUE', cache(Item(id='a')).value, cache.stats.hits)"
STEPS = """
from datamultiproc import Processor

def helper(v):
    return v + {helper}

class Step(Processor):
    def process(self, sample):
        sample.value = helper({base})
        return sample
"""


class _Kernel:
    """A real kernel running ``cells``; ``run(i)`` executes cell ``i`` and keeps its text."""

    def __init__(
        self, cells: list[str], workdir: Path, paths: list[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import nbformat
        from nbclient import NotebookClient

        self.notebook = nbformat.v4.new_notebook(
            cells=[nbformat.v4.new_code_cell(c) for c in cells]
        )
        # Worker processes find the package (and the user module) on the inherited path.
        path = [*paths, os.environ.get("PYTHONPATH")]
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, path)))
        self.client = NotebookClient(
            self.notebook,
            timeout=120,
            kernel_name="python3",
            resources={"metadata": {"path": str(workdir)}},
        )
        self.outputs: list[str] = []

    def run(self, index: int) -> None:
        cell = self.notebook.cells[index]
        self.client.execute_cell(cell, index)
        text = "".join(o.get("text", "") for o in cell.outputs)
        assert "Error" not in text, text
        self.outputs.append(text.strip())


def test_autoreload_edit_of_method_and_helper_is_a_miss(
    tmp_path: Path, jupyter_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps = tmp_path / "steps.py"
    steps.write_text(STEPS.format(helper=1, base=10))
    setup = SETUP.format(workdir=str(tmp_path), cache=str(tmp_path / "cache"))
    kernel = _Kernel([setup, RUN], tmp_path, [str(ROOT)], monkeypatch)
    run_cell, outputs = kernel.run, kernel.outputs

    with kernel.client.setup_kernel():
        run_cell(0)
        run_cell(1)  # miss: 11
        run_cell(1)  # hit: 11
        for helper, base in ((1, 20), (5, 20)):  # edit the method, then the helper
            time.sleep(1.1)  # a new mtime for autoreload
            steps.write_text(STEPS.format(helper=helper, base=base))
            run_cell(1)
    assert outputs[1:] == ["VALUE 11 0", "VALUE 11 1", "VALUE 21 1", "VALUE 25 1"]


BACKENDS = {
    "executor": """
import concurrent.futures, multiprocessing
backend = concurrent.futures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))
close = backend.shutdown
""",
    "dask": """
from distributed import Client, LocalCluster
cluster = LocalCluster(
    n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0"
)
backend = Client(cluster)
close = lambda: (backend.close(), cluster.close())
""",
}
WORKERS_RUN = """
result = Cache(processor=steps.Step(), cache_dir={cache!r}).run(
    [Item(id=f"a{{i}}") for i in range(6)], backend=backend, chunksize=1, progress=False
)
print("VALUE", sorted({{s.value for s in result}}), sum(r.steps[0].cache_hit for r in result.records))
"""


@pytest.mark.parametrize("backend", ["executor", "dask"])
def test_autoreload_edits_reach_warm_executor_and_dask_workers(
    tmp_path: Path, jupyter_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    steps = tmp_path / "steps.py"
    steps.write_text(STEPS.format(helper=1, base=10))
    setup = SETUP.format(workdir=str(tmp_path), cache=str(tmp_path / "cache"))
    run = WORKERS_RUN.format(cache=str(tmp_path / "cache"))
    cells = [setup, BACKENDS[backend], run, "close()"]
    kernel = _Kernel(cells, tmp_path, [str(ROOT), str(tmp_path)], monkeypatch)
    run_cell, outputs = kernel.run, kernel.outputs

    with kernel.client.setup_kernel():
        run_cell(0)
        run_cell(1)
        try:
            run_cell(2)  # computed: 11
            run_cell(2)  # warm workers, cache hits
            for helper, base in ((1, 20), (5, 20)):  # edit the method, then the helper
                time.sleep(1.1)  # a new mtime for autoreload
                steps.write_text(STEPS.format(helper=helper, base=base))
                run_cell(2)
        finally:
            run_cell(3)
    assert outputs[2:6] == ["VALUE [11] 0", "VALUE [11] 6", "VALUE [21] 0", "VALUE [25] 0"]
