"""load_saved: a Save folder as a lazy collection, one configuration at a time; prune; 0.1.3 files."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import datamultiproc
from datamultiproc import BaseSample, Compose, Save, SavedSamples, load_saved
from datamultiproc.exceptions import MixedConfigurationsWarning, StorageError
from datamultiproc.storage import prune
from tests.helpers import AddStep, Measure, NumberSample, TileSample, number_samples, tile_samples

OLD_FILES = Path(__file__).resolve().parents[2] / "data" / "v0_1_3"


def save_run(save_dir: Path, step_size: int, count: int) -> Compose:
    pipeline = Compose([AddStep(step_size=step_size), Save(save_to_dir=save_dir)])
    datamultiproc.run(pipeline, number_samples(count), backend="sequential", progress=False)
    return pipeline


def test_a_save_folder_opens_as_a_lazy_collection(save_dir: Path) -> None:
    save_run(save_dir, 1, 3)
    saved = load_saved(save_dir, cls=NumberSample)
    assert len(saved) == 3
    assert saved.ids == ["s0", "s1", "s2"]
    assert [s.data for s in saved] == [1, 2, 3]
    assert saved[1].id == "s1"
    assert saved.get("s2").data == 3
    assert saved[1:].ids == ["s1", "s2"]
    with pytest.raises(KeyError, match="no saved sample with id 'nope'"):
        saved.get("nope")
    frame = saved.to_frame()
    assert frame["data"].tolist() == [1, 2, 3]
    assert frame.index.tolist() == ["s0", "s1", "s2"]
    history = saved.history()
    assert history["stage"].tolist() == ["AddStep"] * 3
    # The stage folder opens the same way.
    assert load_saved(save_dir / "AddStep").ids == saved.ids


def test_files_are_read_only_when_their_sample_is_accessed(save_dir: Path) -> None:
    save_run(save_dir, 1, 3)
    saved: SavedSamples[NumberSample] = load_saved(save_dir)
    (save_dir / "AddStep" / "s1.pickle").write_bytes(b"not a pickle")
    assert saved.get("s0").data == 1
    assert saved.ids == ["s0", "s1", "s2"]
    with pytest.raises(StorageError, match=r"s1\.pickle"):
        saved.get("s1")


def test_two_configurations_load_the_latest_and_warn_about_the_rest(save_dir: Path) -> None:
    save_run(save_dir, 1, 4)  # s0..s3 with step 1
    latest = save_run(save_dir, 100, 2)  # s0, s1 rewritten with step 100
    with pytest.warns(MixedConfigurationsWarning, match=r"left out 2 file\(s\)") as caught:
        saved: SavedSamples[NumberSample] = load_saved(save_dir)
    assert "configuration='all'" in str(caught[0].message)
    assert saved.ids == ["s0", "s1"]
    assert [s.data for s in saved] == [100, 101]
    save = latest.steps[-1]
    assert isinstance(save, Save)
    configuration = save.configuration((latest.steps[0],))
    assert {f.configuration for f in saved.files} == {configuration}
    everything: SavedSamples[NumberSample] = load_saved(save_dir, configuration="all")
    frame = everything.to_frame()
    assert frame["data"].tolist() == [100, 101, 3, 4]
    assert frame["configuration"].tolist()[:2] == [configuration] * 2
    assert frame["configuration"].nunique() == 2
    older = next(c for c in everything.configurations if c != configuration)
    assert load_saved(save_dir, configuration=older[:6]).ids == ["s2", "s3"]
    assert everything.configurations[older]["upstream"] == ["AddStep(step_size=1)"]
    with pytest.raises(ValueError, match="matches 0 configurations"):
        load_saved(save_dir, configuration="fff")


def test_prune_removes_a_save_folders_files_of_other_configurations(save_dir: Path) -> None:
    save_run(save_dir, 1, 4)
    latest = save_run(save_dir, 100, 2)
    planned = prune(latest, dry_run=True)
    assert [(r.key, r.entries) for r in planned] == [("save", 2)]
    assert len(os.listdir(save_dir / "AddStep")) == 5  # 4 files and the records
    removed = prune(latest)
    assert [(r.key, r.entries, r.upstream) for r in removed] == [
        ("save", 2, ("AddStep(step_size=1)",))
    ]
    assert sorted(os.listdir(save_dir / "AddStep")) == [".configurations", "s0.pickle", "s1.pickle"]
    assert load_saved(save_dir).ids == ["s0", "s1"]  # no warning left
    assert prune(latest) == []


def test_a_folder_with_several_stages_needs_a_stage(save_dir: Path) -> None:
    Save(save_to_dir=save_dir)(BaseSample(id="a", processing_history=[("One", "")]))
    Save(save_to_dir=save_dir)(BaseSample(id="b", processing_history=[("Two", "")]))
    with pytest.raises(ValueError, match=r"several stage folders \['One', 'Two'\]"):
        load_saved(save_dir)
    assert load_saved(save_dir, stage="Two").ids == ["b"]
    with pytest.raises(FileNotFoundError):
        load_saved(save_dir / "missing")


def test_a_sample_of_another_class_is_an_error(save_dir: Path) -> None:
    save_run(save_dir, 1, 1)
    with pytest.raises(StorageError, match="holds a NumberSample, not a TileSample"):
        load_saved(save_dir, cls=TileSample)[0]


def test_files_of_0_1_3_load_with_a_named_class(tmp_path: Path) -> None:
    folder = tmp_path / "old"
    shutil.copytree(OLD_FILES, folder, ignore=shutil.ignore_patterns("*.py"))
    saved = load_saved(folder, cls=TileSample)
    assert saved.ids == ["tile-0", "tile-1", "tile-2"]
    tile = saved.get("tile-1")
    assert isinstance(tile, TileSample)
    assert tile.label is None
    assert tile.processing_history == [("Measure", "scale=2.0")]
    assert tile.features == {"mean": 5.0, "max": 4.0}
    np.testing.assert_array_equal(tile.pixels, np.array([[1, 2], [3, 4]], dtype=np.uint8))
    frame = saved.to_frame(arrays="summary")
    assert frame["features.mean"].tolist() == [3.0, 5.0, 7.0]
    assert frame["pixels.shape"].tolist() == [(2, 2)] * 3
    path = folder / "Measure" / "tile-0_Measure_.pickle"
    assert TileSample.read_file(path).size == 1
    with pytest.raises(StorageError, match=r"0\.1\.3 as a plain dict"):
        BaseSample.read_file(path)
    with pytest.raises(StorageError, match="cls=MySample"):
        load_saved(folder)[0]


def test_new_saves_beside_0_1_3_files_load_only_the_new_ones(tmp_path: Path) -> None:
    folder = tmp_path / "old"
    shutil.copytree(OLD_FILES, folder, ignore=shutil.ignore_patterns("*.py"))
    pipeline = Compose([Measure(scale=3.0), Save(save_to_dir=folder)])
    datamultiproc.run(pipeline, tile_samples(2), backend="sequential", progress=False)
    with pytest.warns(MixedConfigurationsWarning, match=r"3 of unrecorded"):
        saved = load_saved(folder, cls=TileSample)
    assert saved.ids == ["tile-0", "tile-1"]
    assert load_saved(folder, cls=TileSample, configuration="unrecorded").ids == [
        "tile-0",
        "tile-1",
        "tile-2",
    ]


def test_torn_record_lines_are_skipped_and_unrecorded_files_still_load(save_dir: Path) -> None:
    save_run(save_dir, 1, 2)
    stage = save_dir / "AddStep"
    [log] = (stage / ".configurations").glob("*.log")
    with open(log, "ab") as handle:
        handle.write(b"17000\ts9.pick")  # a write cut short by a power loss
    NumberSample(id="s9", data=9).write_file(
        stage / "s9.pickle"
    )  # a writer killed before its record
    with pytest.warns(MixedConfigurationsWarning, match="1 of unrecorded"):
        saved: SavedSamples[NumberSample] = load_saved(save_dir)
    assert saved.ids == ["s0", "s1"]
    assert load_saved(save_dir, configuration="unrecorded").ids == ["s9"]
