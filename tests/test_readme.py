"""The README's opening example runs as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_readme_opening_example_runs(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    example = re.search(r"```python\n(from datamultiproc import .*?)```", readme, re.DOTALL)
    assert example is not None
    script = example.group(1) + (
        "\nassert result.status == 'complete', result\n"
        "assert len(result.history()) == 3 * 10_000  # Scale, Label, Save\n"
        "assert result.cache_stats().loc['Scale', 'misses'] == 10_000\n"
        "rerun = pipeline.run([Reading(id=f'r{i}', value=i) for i in range(10_000)])\n"
        "assert rerun.cache_stats().loc['Scale', 'hits'] == 10_000\n"
        "print(rerun.samples[3].label, rerun.samples[9].label)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["low", "high"]
    assert len(list((tmp_path / "results" / "Label").glob("*.pickle"))) == 10_000
