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


def test_the_process_backend_is_public_but_loaded_on_first_use() -> None:
    code = (
        "import sys, datamultiproc.execution as e; "
        "assert 'multiprocess' not in sys.modules; "
        "b = e.MultiprocessBackend(2, inline=False); "
        "assert 'multiprocess' in sys.modules and b.inline is False; "
        "assert 'MultiprocessBackend' in e.__all__"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
