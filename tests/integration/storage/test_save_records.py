"""Save records under concurrency: many worker processes write one folder at once."""

from __future__ import annotations

import multiprocessing
import warnings
from pathlib import Path
from typing import Any

import pytest

import datamultiproc
from datamultiproc import Compose, Save, SavedSamples, load_saved
from datamultiproc.exceptions import MixedConfigurationsWarning
from datamultiproc.storage._save_records import read_records
from tests.helpers import AddStep, NumberSample, append_save_records, number_samples

pytestmark = pytest.mark.slow


def test_process_workers_record_every_file_they_save(save_dir: Path) -> None:
    first = Compose([AddStep(step_size=1), Save(save_to_dir=save_dir)])
    second = Compose([AddStep(step_size=2), Save(save_to_dir=save_dir)])
    options: dict[str, Any] = {
        "backend": "process",
        "workers": 3,
        "chunksize": 1,
        "progress": False,
    }
    datamultiproc.run(first, number_samples(300), **options)
    datamultiproc.run(second, number_samples(200, prefix="s"), **options)
    records, descriptions = read_records(save_dir / "AddStep")
    assert len(records) == 300
    assert len(descriptions) == 2
    logs = sorted((save_dir / "AddStep" / ".configurations").glob("*.log"))
    lines = [line for log in logs for line in log.read_text().splitlines()]
    assert len(lines) == 500  # one whole line per write, none torn or lost
    with pytest.warns(MixedConfigurationsWarning, match=r"left out 100 file\(s\)"):
        saved: SavedSamples[NumberSample] = load_saved(save_dir)
    assert len(saved) == 200
    assert {s.data for s in saved} == {i + 2 for i in range(200)}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        everything: SavedSamples[NumberSample] = load_saved(save_dir, configuration="all")
    assert len(everything) == 300


def test_concurrent_appends_stay_whole_lines(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    writers, count = 6, 400
    with context.Pool(writers) as pool:
        pool.starmap(
            append_save_records,
            [(str(tmp_path), "c0ffee", worker, count) for worker in range(writers)],
        )
    lines = (tmp_path / ".configurations" / "c0ffee.log").read_text().splitlines()
    assert len(lines) == writers * count
    records, _ = read_records(tmp_path)
    assert len(records) == writers * count
    assert records["w3-51.pickle"].sample_id == "w3-51" + "x"
