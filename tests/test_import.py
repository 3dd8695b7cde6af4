"""Importing datamultiproc stays light: pandas and ipywidgets load only when asked for."""

from __future__ import annotations

import subprocess
import sys


def test_import_does_not_load_pandas_or_widgets() -> None:
    code = (
        "import sys, datamultiproc; "
        "print(sorted(m for m in ('pandas', 'ipywidgets', 'IPython', 'distributed') if m in sys.modules))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert completed.stdout.strip() == "[]"
