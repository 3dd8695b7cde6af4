"""Cache behaviour: hits, misses, corrupt entries, stats and records."""

from __future__ import annotations

import json
import math
import pickle
import random
import sys
import types
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from datamultiproc import Cache, Compose, StepRecord
from datamultiproc.core import recording
from datamultiproc.exceptions import CacheWarning
from datamultiproc.storage import CacheStats
from tests.unit.storage._types import (
    CALLS,
    SOURCE,
    ArraySample,
    CountedAdd,
    CountedDouble,
    NumberSample,
    Passthrough,
    ScaleArray,
    define,
)


def samples(count: int = 5) -> list[NumberSample]:
    return [NumberSample(id=f"s{index}", data=index) for index in range(count)]


def pipeline(cache_dir: Path, step_size: int = 1, factor_step: int = 1) -> Compose:
    return Compose(
        CountedAdd(step_size=step_size),
        Cache(processor=CountedDouble(), cache_dir=cache_dir),
        CountedAdd(step_size=factor_step),
    )


def test_layout_is_stage_then_configuration_then_id(cache_dir: Path) -> None:
    cache = Cache(processor=CountedAdd(), cache_dir=str(cache_dir))
    cache(NumberSample(id="s0", data=1))
    [entry] = (cache_dir / "CountedAdd").rglob("*.pickle")
    assert entry.name == "s0.pickle"
    assert entry.parent.parent == cache_dir / "CountedAdd"
    manifest = json.loads((entry.parent / "manifest.json").read_text())
    assert manifest["stage"] == "CountedAdd"
    assert manifest["processor"] == ["CountedAdd(step_size=1)"]
    assert entry == cache.entry_path(NumberSample(id="s0", data=0))


def test_rerun_hits_and_skips_the_processor(cache_dir: Path) -> None:
    first = [pipeline(cache_dir)(s) for s in samples()]
    assert CALLS["CountedDouble"] == 5
    again = [pipeline(cache_dir)(s) for s in samples()]
    assert CALLS["CountedDouble"] == 5
    assert again == first


def test_rerun_over_samples_mutated_in_place_hits(cache_dir: Path) -> None:
    inputs = samples()
    process = pipeline(cache_dir)
    first = [process(s).model_copy(deep=True) for s in inputs]
    assert inputs[1].data != 1  # the first run changed them in place
    assert CALLS["CountedDouble"] == 5
    second = [process(s) for s in inputs]
    assert CALLS["CountedDouble"] == 5
    assert [s.data for s in second] == [s.data for s in first]
    assert [s.processing_history for s in second] == [s.processing_history for s in first]


@pytest.mark.parametrize(
    ("step_size", "factor_step"), [(2, 1), (1, 5)], ids=["upstream-edit", "downstream-edit"]
)
def test_edits_miss_only_when_they_touch_the_key(
    cache_dir: Path, step_size: int, factor_step: int
) -> None:
    [pipeline(cache_dir)(s) for s in samples()]
    results = [pipeline(cache_dir, step_size, factor_step)(s) for s in samples()]
    upstream_changed = step_size != 1
    assert CALLS["CountedDouble"] == (10 if upstream_changed else 5)
    assert [s.data for s in results] == [(i + step_size) * 2 + factor_step for i in range(5)]


def test_new_configuration_is_stored_beside_the_old(cache_dir: Path) -> None:
    for step_size in (1, 2):
        Cache(processor=CountedAdd(step_size=step_size), cache_dir=cache_dir)(samples(1)[0])
    folders = [p for p in (cache_dir / "CountedAdd").iterdir()]
    assert len(folders) == 2
    Cache(processor=CountedAdd(step_size=1), cache_dir=cache_dir)(samples(1)[0])
    assert CALLS["CountedAdd"] == 2


def test_records_and_stats(cache_dir: Path) -> None:
    cache = Cache(processor=CountedAdd(step_size=3), cache_dir=cache_dir)
    with recording() as miss:
        cache(NumberSample(id="a", data=1))
    with recording() as hit:
        cache(NumberSample(id="a", data=1))
    [missed] = miss.records
    [hitted] = hit.records
    assert missed.stage == hitted.stage == "CountedAdd"
    assert missed.params == hitted.params == "step_size=3"
    assert missed.cache_hit is False
    assert missed.bytes_written > 0
    assert hitted.cache_hit is True
    assert hitted.bytes_read == missed.bytes_written
    expected = CacheStats(
        hits=1, misses=1, bytes_read=hitted.bytes_read, bytes_written=missed.bytes_written
    )
    assert cache.stats == expected
    assert CacheStats.from_records([missed, hitted], stage="CountedAdd") == expected
    parent = Cache(processor=CountedAdd(step_size=3), cache_dir=cache_dir)
    other = StepRecord(0, "CountedAdd", "step_size=4", 0.0, cache_hit=True, bytes_read=7)
    parent.update_stats([missed, hitted, other])
    assert parent.stats == expected
    assert expected.hit_rate == 0.5
    assert math.isnan(CacheStats().hit_rate)  # no lookups, no rate (0.0 would mean all missed)
    assert repr(CacheStats()) == (
        "CacheStats(hits=0, misses=0, recomputed=0, bytes_read=0, bytes_written=0)"
    )
    assert expected + expected == CacheStats(
        2, 2, 0, 2 * expected.bytes_read, 2 * expected.bytes_written
    )


def test_cached_compose_records_its_last_step(cache_dir: Path) -> None:
    cache = Cache(processor=Compose(CountedAdd(), CountedDouble()), cache_dir=cache_dir)
    with recording() as miss:
        cache(NumberSample(id="a", data=1))
    with recording() as hit:
        result = cache(NumberSample(id="a", data=1))
    assert [r.cache_hit for r in miss.records] == [None, False]
    assert [(r.stage, r.cache_hit) for r in hit.records] == [("CountedDouble", True)]
    assert result.data == 4
    assert len(list((cache_dir / "Compose").rglob("*.pickle"))) == 1


TRAILER_BYTES = 13


def test_truncated_entries_are_recomputed_never_loaded(cache_dir: Path) -> None:
    cache = Cache(processor=ScaleArray(), cache_dir=cache_dir)

    def make() -> ArraySample:
        return ArraySample(id="big", array=np.arange(5000.0), label="x" * 300)

    expected = cache(make())
    path = cache.entry_path(make())
    whole = path.read_bytes()
    end = len(whole) - TRAILER_BYTES  # the pickle; after it, the stored compute time
    offsets = [0, 1, end // 2, end - 1, *random.Random(0).sample(range(end), 25)]
    for offset in offsets:
        path.write_bytes(whole[:offset])
        calls = CALLS["ScaleArray"]
        with pytest.warns(CacheWarning, match=rf"{path.name}.*recomputing"):
            result = cache(make())
        assert CALLS["ScaleArray"] == calls + 1
        assert result == expected
        assert path.read_bytes()[:end] == whole[:end]
    assert cache.stats.recomputed == len(offsets)


def test_garbage_and_foreign_entries_are_recomputed(cache_dir: Path) -> None:
    cache = Cache(processor=CountedAdd(), cache_dir=cache_dir)
    cache(NumberSample(id="a", data=1))
    path = cache.entry_path(NumberSample(id="a", data=1))
    for content in (
        b"not a pickle",
        pickle.dumps({"id": "a"}),
        pickle.dumps(NumberSample(id="b", data=0)),
    ):
        path.write_bytes(content)
        with pytest.warns(CacheWarning, match="recomputing"), recording() as recorder:
            assert cache(NumberSample(id="a", data=1)).data == 2
        assert recorder.records[-1].recomputed is True
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cache(NumberSample(id="a", data=1)).data == 2


def test_content_key_misses_when_input_data_changes(cache_dir: Path) -> None:
    cache = Cache(processor=ScaleArray(), cache_dir=cache_dir, key="content")
    cache(ArraySample(id="a", array=np.ones(10)))
    cache(ArraySample(id="a", array=np.ones(10)))
    assert CALLS["ScaleArray"] == 1
    cache(ArraySample(id="a", array=np.zeros(10)))
    assert CALLS["ScaleArray"] == 2
    assert len(list(cache_dir.rglob("*.pickle"))) == 2


def test_id_key_ignores_input_data(cache_dir: Path) -> None:
    cache = Cache(processor=ScaleArray(), cache_dir=cache_dir)
    cache(ArraySample(id="a", array=np.ones(10)))
    assert (cache(ArraySample(id="a", array=np.zeros(10))).array == 2).all()
    assert CALLS["ScaleArray"] == 1


def test_lookup_never_lists_the_directory(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = Cache(processor=CountedAdd(), cache_dir=cache_dir)
    cache(NumberSample(id="a", data=1))

    def forbidden(*args: object, **kwargs: object) -> None:
        msg = "a lookup listed a directory"
        raise AssertionError(msg)

    import os

    monkeypatch.setattr(os, "listdir", forbidden)
    monkeypatch.setattr(os, "scandir", forbidden)
    monkeypatch.setattr(Path, "iterdir", forbidden)
    monkeypatch.setattr(Path, "glob", forbidden)
    assert cache(NumberSample(id="a", data=1)).data == 2
    assert cache(NumberSample(id="b", data=1)).data == 2


def test_entry_of_a_class_missing_here_is_computed_and_left_alone(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = types.ModuleType("dmp_vanishing_notebook")
    source = (
        "from datamultiproc import BaseSample\nclass Vanishing(BaseSample):\n    data: int = 0\n"
    )
    exec(source, module.__dict__)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    cache = Cache(processor=Passthrough(), cache_dir=cache_dir)
    sample = module.Vanishing(id="v", data=1)
    cache(sample)
    path = cache.entry_path(sample)
    written = path.read_bytes()
    monkeypatch.delitem(sys.modules, module.__name__)
    with pytest.warns(CacheWarning, match="cannot be imported in this process"):
        assert cache(sample) is sample
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cache(sample) is sample  # warned once
    assert path.read_bytes() == written
    assert cache.stats.recomputed == 0
    assert cache.stats.misses == 3


def test_notebook_class_edit_misses_and_comment_edit_hits(cache_dir: Path) -> None:
    def run(source: str) -> tuple[int, int]:
        cache = Cache(processor=define(source)(), cache_dir=cache_dir)
        result = cache(NumberSample(id="n", data=3))
        return result.data, cache.stats.hits

    assert run(SOURCE) == (6, 0)
    assert run(SOURCE.replace("# scale it", "# scale it, twice as fast")) == (6, 1)
    assert run(SOURCE.replace("* self.factor)", "* self.factor + 1)")) == (7, 0)
    assert run(SOURCE) == (6, 1)


def define_sample(name: str) -> type[Any]:  # fields mypy cannot see
    namespace: dict[str, object] = {"__name__": "__main__"}
    exec(
        f"from datamultiproc import BaseSample\nclass {name}(BaseSample):\n    data: int\n",
        namespace,
    )
    return namespace[name]  # type: ignore[return-value]


def test_notebook_class_missing_from_main_is_written_by_name(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As in a spawned worker: the class came by value and is not in __main__.
    cell_sample = define_sample("ByNameSample")
    cache = Cache(processor=Passthrough(), cache_dir=cache_dir)
    cache(cell_sample(id="c", data=1))
    path = cache.entry_path(cell_sample(id="c", data=1))
    assert b"resolve_class" in path.read_bytes()
    hit = cache(cell_sample(id="c", data=2))
    assert type(hit) is cell_sample
    assert (hit.data, cache.stats.hits) == (1, 1)
    # As in the notebook, even after a restart: the class in __main__ is used.
    current = define_sample("ByNameSample")
    monkeypatch.setattr(sys.modules["__main__"], "ByNameSample", current, raising=False)
    with path.open("rb") as handle:
        assert type(pickle.load(handle)) is current


def test_entry_by_reference_loads_where_main_lacks_the_class(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cell_sample = define_sample("ByReferenceSample")
    main = sys.modules["__main__"]
    monkeypatch.setattr(main, "ByReferenceSample", cell_sample, raising=False)
    cache = Cache(processor=Passthrough(), cache_dir=cache_dir)
    cache(cell_sample(id="c", data=1))
    assert b"resolve_class" not in cache.entry_path(cell_sample(id="c", data=1)).read_bytes()
    monkeypatch.delattr(main, "ByReferenceSample")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hit = cache(cell_sample(id="c", data=2))
    assert (type(hit), hit.data, cache.stats.hits) == (cell_sample, 1, 1)
