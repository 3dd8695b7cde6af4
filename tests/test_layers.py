"""The layers import one way (core <- storage <- execution <- notebook), checked by import-linter."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("importlinter")

ROOT = Path(__file__).resolve().parent.parent
LINT = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [sys.executable, "-c", LINT, "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_the_layers_contract_is_kept() -> None:
    completed = _lint(ROOT)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert ", 0 broken" in completed.stdout


@pytest.mark.slow
def test_a_lazy_upward_import_breaks_the_contract(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "datamultiproc", tmp_path / "datamultiproc")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    module = tmp_path / "datamultiproc" / "core" / "_compose.py"
    lazy = "\n\ndef _upward() -> None:\n    from datamultiproc.execution import run  # noqa: F401\n"
    module.write_text(module.read_text() + lazy)
    completed = _lint(tmp_path)
    assert completed.returncode == 1
    assert "datamultiproc.core is not allowed to import datamultiproc.execution" in completed.stdout
    assert "datamultiproc.core._compose -> datamultiproc.execution" in completed.stdout
