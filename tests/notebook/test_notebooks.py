"""The example notebooks, executed in a real Jupyter kernel, with assertions on their outputs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.notebook.conftest import (
    cell,
    displayed_widget_ids,
    execute_notebook,
    html,
    text,
    widget_states,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900), pytest.mark.usefixtures("jupyter_path")]

SAMPLES = 200


def test_quickstart(tmp_path: Path) -> None:
    nb = execute_notebook("quickstart.ipynb", tmp_path)

    # Both runs displayed a panel whose stored bar ends green at the total.
    assert displayed_widget_ids(cell(nb, "first-run"))
    assert displayed_widget_ids(cell(nb, "rerun"))
    bars = widget_states(nb, "datamultiproc-progress-bar")
    assert len(bars) == 2
    for bar in bars:
        assert (bar["value"], bar["max"], bar["bar_style"]) == (SAMPLES, SAMPLES, "success")
    summaries = widget_states(nb, "datamultiproc-progress-summary")
    assert all(f"Complete · {SAMPLES}/{SAMPLES} samples" in s["value"] for s in summaries)

    # The result's HTML repr, then the frames.
    page = html(cell(nb, "first-run"))
    assert "datamultiproc-result" in page
    assert f"{SAMPLES} ok, 0 failed" in page
    history = text(cell(nb, "history"))
    assert f"history shape: ({SAMPLES * 3}, 10)" in history  # Scale (cached), Label, Save
    assert "sample_id" in history
    assert "cache_hit" in history
    assert re.search(r"Scale\s+0\s+200\s+0\.0", text(cell(nb, "cache-stats")))
    assert "p95_seconds" in text(cell(nb, "timings"))
    assert "Empty DataFrame" in text(cell(nb, "failures"))

    # The rerun loaded every cached step.
    assert "cache hit rate on rerun: 100%" in text(cell(nb, "rerun"))
    assert f"saved samples: {SAMPLES} history rows: {SAMPLES * 2}" in text(
        cell(nb, "saved-history")
    )


def test_caching(tmp_path: Path) -> None:
    nb = execute_notebook("caching.ipynb", tmp_path)
    expected = {
        "first": ["Normalize: 0 hits, 50 misses", "Square: 0 hits, 50 misses"],
        "again": ["Normalize: 50 hits, 0 misses", "Square: 50 hits, 0 misses"],
        "param": ["Normalize: 0 hits, 50 misses", "Square: 0 hits, 50 misses"],
        "code": ["Normalize: 50 hits, 0 misses", "Square: 0 hits, 50 misses"],
    }
    for tag, lines in expected.items():
        assert text(cell(nb, tag)).splitlines() == lines, tag


def test_failures(tmp_path: Path) -> None:
    nb = execute_notebook("failures.ipynb", tmp_path)
    # Values 7, 32, 57, 82 raise in Validate; r042 kills its worker in Crash.
    run = text(cell(nb, "run"))
    assert "status: complete_with_failures, ok: 95, failed: 5" in run
    bar = widget_states(nb, "datamultiproc-progress-bar")
    assert [(b["value"], b["max"], b["bar_style"]) for b in bar] == [(100, 100, "warning")]
    counts = text(cell(nb, "failures"))
    assert "ValueError: 4" in counts
    assert "WorkerLostError: 1" in counts
    assert "implausible reading 7" in counts
    assert "Traceback" in text(cell(nb, "traceback"))
    assert "implausible reading" in text(cell(nb, "traceback"))
    assert "SIGKILL" in text(cell(nb, "worker-died"))


def test_inspect(tmp_path: Path) -> None:
    nb = execute_notebook("inspect.ipynb", tmp_path)

    sample = html(cell(nb, "sample"))
    assert "float64 (256, 256)" in sample
    assert sample.count("data:image/png;base64,") == 1
    assert "dict, 2 keys" in sample
    assert "Acquisition, 2 fields" in sample

    trace = cell(nb, "trace")
    assert "files written: []" in text(trace)  # the Cache and the Save wrote nothing
    page = html(trace)
    assert "cache miss: new configuration" in page
    assert page.count('class="dmp-changed"') == 4  # image; profile and mask; mean
    frame = text(cell(nb, "trace-frame"))
    assert re.search(r"Threshold\s+\S+\s+-\s+profile, mask", frame)
    assert "True)" in text(cell(nb, "snapshot"))  # the input's mask is still None

    failed = cell(nb, "failed-trace")
    assert "Measure ValueError mask covers only 0% of the tile" in text(failed)
    assert "Traceback" in html(failed)

    browse = cell(nb, "browse")
    assert "status: complete_with_failures, ok: 12, failed: 1" in text(browse)
    assert displayed_widget_ids(browse)
    assert "Tile" in html(cell(nb, "result-sample"))


def test_data_in_and_out(tmp_path: Path) -> None:
    nb = execute_notebook("data-in-and-out.ipynb", tmp_path)
    assert "image: (64, 64) uint8" in text(cell(nb, "image"))
    assert "64 samples; first: tile-00-00 (8, 8) corner" in text(cell(nb, "samples"))
    bad = text(cell(nb, "bad-table"))
    assert "columns that match no field: 'colour'" in bad
    assert "row 'tile-00-08', field 'top': Input should be a valid integer" in bad
    run = text(cell(nb, "run"))
    ok, failed = map(int, re.search(r"(\d+) ok, (\d+) failed", run).groups())  # type: ignore[union-attr]
    assert ok + failed == 64
    assert failed > 0
    assert "inputs untouched: True" in run
    frame = text(cell(nb, "frame"))
    assert re.search(r"status\s+category", frame)
    assert re.search(r"features\.mean\s+float64", frame)
    assert f"ok        {ok}" in text(cell(nb, "merged"))
    saved = text(cell(nb, "saved"))
    assert f"<SavedSamples: {ok} samples" in saved
    assert saved.strip().endswith("True")  # load_saved(...).to_frame() equals result.to_frame()
    second = text(cell(nb, "second-config"))
    assert "MixedConfigurationsWarning" in second
    kept = int(re.search(r"(\d+) saved by the second run; (\d+) loaded", second).group(1))  # type: ignore[union-attr]
    assert f"{kept} saved by the second run; {kept} loaded" in second
    assert f"{kept} files left" in text(cell(nb, "prune"))
