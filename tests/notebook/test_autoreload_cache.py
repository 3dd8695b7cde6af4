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


def test_autoreload_edit_of_method_and_helper_is_a_miss(
    tmp_path: Path, jupyter_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nbformat
    from nbclient import NotebookClient

    steps = tmp_path / "steps.py"
    steps.write_text(STEPS.format(helper=1, base=10))
    setup = SETUP.format(workdir=str(tmp_path), cache=str(tmp_path / "cache"))
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(setup), nbformat.v4.new_code_cell(RUN)]
    )
    paths = [str(ROOT), os.environ.get("PYTHONPATH")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, paths)))
    client = NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    outputs: list[str] = []

    def run_cell(index: int) -> None:
        client.execute_cell(notebook.cells[index], index)
        text = "".join(o.get("text", "") for o in notebook.cells[index].outputs)
        assert "Error" not in text, text
        outputs.append(text.strip())

    with client.setup_kernel():
        run_cell(0)
        run_cell(1)  # miss: 11
        run_cell(1)  # hit: 11
        for helper, base in ((1, 20), (5, 20)):  # edit the method, then the helper
            time.sleep(1.1)  # a new mtime for autoreload
            steps.write_text(STEPS.format(helper=helper, base=base))
            run_cell(1)
    assert outputs[1:] == ["VALUE 11 0", "VALUE 11 1", "VALUE 21 1", "VALUE 25 1"]
