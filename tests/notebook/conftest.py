"""Fixtures for the notebook tests: a kernel on this interpreter, notebook execution, outputs."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
ARTIFACTS = Path(os.environ.get("DATAMULTIPROC_ARTIFACTS", ROOT / "test-artifacts"))


@pytest.fixture(scope="session")
def jupyter_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Put first on JUPYTER_PATH a ``python3`` kernel spec that runs this very interpreter.

    jupyter_client already maps the default spec's ``python`` to ``sys.executable``,
    but a user-level ``python3`` spec (``ipykernel install --user``) could point at
    another Python without datamultiproc; this one wins over it, for nbclient and for
    a JupyterLab server started with this environment.
    """
    path = tmp_path_factory.mktemp("jupyter")
    spec_dir = path / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (datamultiproc tests)",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    with pytest.MonkeyPatch.context() as patch:
        previous = os.environ.get("JUPYTER_PATH")
        patch.setenv("JUPYTER_PATH", os.pathsep.join(filter(None, [str(path), previous])))
        yield path


def execute_notebook(name: str, workdir: Path, *, timeout: int = 600) -> Any:
    """Run ``notebooks/<name>`` in a real kernel with cwd ``workdir``; return the notebook."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(workdir)}},
        store_widget_state=True,
    )
    client.execute()
    ARTIFACTS.mkdir(exist_ok=True)
    nbformat.write(nb, ARTIFACTS / f"executed-{name}")
    return nb


def cell(nb: Any, tag: str) -> Any:
    """Return the one cell carrying ``tag``."""
    cells = [c for c in nb.cells if tag in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, f"expected one cell tagged {tag!r}, found {len(cells)}"
    return cells[0]


def text(cell: Any) -> str:
    """Return a cell's printed text and plain-text results, joined.

    The kernel flushes a stream every so often, so one ``print`` may arrive as two
    outputs (more likely on a busy machine), possibly with the other stream's text in
    between: the stdout and stderr pieces between two results are each put together.
    """
    parts: list[str] = []
    streams: dict[str, int] = {}  # stream name -> its part since the last result
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream":
            name = output["name"]
            if name in streams:
                parts[streams[name]] += output["text"]
            else:
                streams[name] = len(parts)
                parts.append(output["text"])
        elif output["output_type"] in ("execute_result", "display_data"):
            streams.clear()
            parts.append(output["data"].get("text/plain", ""))
    return "\n".join(parts)


def html(cell: Any) -> str:
    """Return a cell's HTML results, joined."""
    return "\n".join(
        output["data"].get("text/html", "")
        for output in cell.get("outputs", [])
        if output["output_type"] in ("execute_result", "display_data")
    )


def widget_states(nb: Any, dom_class: str) -> list[dict[str, Any]]:
    """Return the stored state of every widget that has CSS class ``dom_class``."""
    stored = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    return [
        model["state"]
        for model in stored.get("state", {}).values()
        if dom_class in model["state"].get("_dom_classes", [])
    ]


def displayed_widget_ids(cell: Any) -> list[str]:
    """Return the model ids of the widgets a cell displayed."""
    return [
        output["data"]["application/vnd.jupyter.widget-view+json"]["model_id"]
        for output in cell.get("outputs", [])
        if "application/vnd.jupyter.widget-view+json" in output.get("data", {})
    ]
