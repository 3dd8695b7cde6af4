"""inspect_cache lists configurations; prune removes the ones no longer current; Save writes."""

from __future__ import annotations

import os
import pickle
import time
from pathlib import Path

from datamultiproc import BaseSample, Cache, Compose, Save
from datamultiproc.core import recording
from datamultiproc.storage import inspect_cache, prune
from tests.unit.storage._types import CountedAdd, CountedDouble, NumberSample


def fill(cache_dir: Path, step_size: int, count: int = 3) -> Compose:
    pipeline = Compose(
        CountedAdd(step_size=step_size), Cache(processor=CountedDouble(), cache_dir=cache_dir)
    )
    for index in range(count):
        pipeline(NumberSample(id=f"s{index}", data=index))
    return pipeline


def test_inspect_lists_configurations(cache_dir: Path) -> None:
    assert inspect_cache(cache_dir) == []
    fill(cache_dir, 1, count=3)
    fill(cache_dir, 2, count=2)
    records = inspect_cache(cache_dir)
    assert [(r.stage, r.entries, r.upstream) for r in sorted(records, key=lambda r: r.entries)] == [
        ("CountedDouble", 2, ("CountedAdd(step_size=2)",)),
        ("CountedDouble", 3, ("CountedAdd(step_size=1)",)),
    ]
    for record in records:
        assert record.processor == "CountedDouble()"
        assert record.bytes > 0
        assert record.last_written is not None
        assert record.key == "id"
        assert record.path.is_dir()


def test_prune_keeps_current_and_removes_the_rest(cache_dir: Path) -> None:
    fill(cache_dir, 1)
    current = fill(cache_dir, 2)
    other_stage = Cache(processor=CountedAdd(step_size=9), cache_dir=cache_dir)
    other_stage(NumberSample(id="x", data=0))
    legacy = cache_dir / "CountedDouble" / "old.pickle"
    legacy.write_bytes(pickle.dumps(NumberSample(id="old", data=0)))
    stale_temp = cache_dir / "CountedDouble" / ".tmp-abc.part"
    stale_temp.write_bytes(b"torn")
    os.utime(stale_temp, (time.time() - 7200, time.time() - 7200))

    planned = prune(current, dry_run=True)
    assert len(planned) == 2
    assert legacy.exists()
    removed = prune(current)
    assert [r.configuration for r in removed] == [r.configuration for r in planned]
    assert not legacy.exists()
    assert not stale_temp.exists()
    left = inspect_cache(cache_dir)
    assert sorted(r.stage for r in left) == ["CountedAdd", "CountedDouble"]
    [kept] = [r for r in left if r.stage == "CountedDouble"]
    assert kept.upstream == ("CountedAdd(step_size=2)",)
    with recording() as recorder:
        current(NumberSample(id="s0", data=0))
    assert recorder.records[-1].cache_hit is True


def test_save_writes_under_last_stage_and_records_bytes(save_dir: Path) -> None:
    save = Save(save_to_dir=str(save_dir))
    sample = CountedAdd()(NumberSample(id="Sample 1", data=1))
    with recording() as recorder:
        save(sample)
        save(sample)
    [path] = (save_dir / "CountedAdd").glob("*.pickle")  # beside .configurations/
    assert path == save.entry_path(sample)
    assert NumberSample.read_file(path) == sample
    assert [r.stage for r in recorder.records] == ["Save", "Save"]
    assert recorder.records[0].bytes_written == path.stat().st_size
    unprocessed = NumberSample(id="raw", data=0)
    assert save(unprocessed) is unprocessed
    assert BaseSample.read_file(save_dir / "unprocessed" / "raw.pickle").id == "raw"


def test_prune_treats_each_pipeline_on_its_own(cache_dir: Path) -> None:
    # A second pipeline is not upstream of the first: both keep their current entries.
    first = fill(cache_dir, 1)
    second = fill(cache_dir, 2)
    assert prune(first, second) == []
    assert sorted(r.entries for r in inspect_cache(cache_dir)) == [3, 3]
