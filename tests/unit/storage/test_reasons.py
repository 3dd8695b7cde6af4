"""Why a cache lookup missed: compared with the closest earlier configuration, in words."""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

from datamultiproc import Cache, Compose, Processor, RunResult, run
from datamultiproc.exceptions import CacheWarning
from datamultiproc.storage._reasons import (
    closest_configuration,
    configuration_reason,
    describe_changes,
)
from tests.helpers import AddStep, DoubleStep, number_samples
from tests.unit.storage._types import SOURCE, define

DIGEST_A = "1f0e3dad99908345"
DIGEST_B = "e4da3b7fbbce2345"


def _reasons(result: RunResult[Any]) -> list[str | None]:
    return [step.reason for record in result.records for step in record.steps]


def _run(pipeline: Processor, count: int = 4) -> RunResult[Any]:
    return run(pipeline, number_samples(count), backend="sequential", progress=False)


# -- the words --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ({"parameter h": "0.4"}, {"parameter h": "0.5"}, "parameter h: 0.4 → 0.5"),
        (
            {"code of Denoise.process": DIGEST_A},
            {"code of Denoise.process": DIGEST_B},
            "code of Denoise.process changed",
        ),
        ({"helper utils.scale": "a1"}, {"helper utils.scale": "b2"}, "helper utils.scale changed"),
        ({"global CONFIG": DIGEST_A}, {"global CONFIG": DIGEST_B}, "global CONFIG changed"),
        (
            {"upstream Normalise: parameter method": "'zscore'"},
            {"upstream Normalise: parameter method": "'minmax'"},
            "upstream Normalise: parameter method 'zscore' → 'minmax'",
        ),
        (
            {"upstream Normalise: code of Normalise": DIGEST_A},
            {"upstream Normalise: code of Normalise": DIGEST_B},
            "upstream Normalise: code of Normalise changed",
        ),
        ({"scikit-image": "0.24.0"}, {"scikit-image": "0.25.1"}, "scikit-image 0.24.0 → 0.25.1"),
        ({"sample schema": "ab12cd34ef"}, {"sample schema": "12ab34cd56"}, "sample schema changed"),
        ({"cache_version": "1"}, {"cache_version": "2"}, "cache_version 1 → 2"),
        (
            {"parameter n": "12345678"},
            {"parameter n": "87654321"},
            "parameter n: 12345678 → 87654321",
        ),
        ({}, {"parameter k": "3"}, "parameter k added"),
        ({"parameter k": "3"}, {}, "parameter k removed"),
        ({"a": "1"}, {"a": "1"}, "configuration changed"),
    ],
)
def test_changes_in_user_words(old: dict[str, str], new: dict[str, str], expected: str) -> None:
    assert describe_changes(old, new) == expected


def test_several_changes_are_joined_and_capped() -> None:
    old = {f"parameter p{i}": str(i) for i in range(6)}
    new = {f"parameter p{i}": str(i + 1) for i in range(6)}
    text = describe_changes(old, new)
    assert text == "parameter p0: 0 → 1; parameter p1: 1 → 2; parameter p2: 2 → 3; and 3 more"
    long = describe_changes({"parameter x": "'a'"}, {"parameter x": "'" + "b" * 500 + "'"})
    assert len(long) <= 240
    assert long.endswith("…")


# -- the closest earlier configuration --------------------------------------------------


def _configuration(stage_dir: Path, name: str, parts: dict[str, str], age: float) -> None:
    folder = stage_dir / name
    folder.mkdir(parents=True)
    manifest = folder / "manifest.json"
    manifest.write_text(json.dumps({"parts": parts}))
    stamp = time.time() - age
    os.utime(manifest, (stamp, stamp))


def test_closest_is_most_parts_equal_then_most_recent(tmp_path: Path) -> None:
    stage = tmp_path / "Denoise"
    base = {"parameter h": "0.4", "parameter n": "3", "scikit-image": "0.24.0"}
    _configuration(stage, "far", {**base, "parameter h": "0.1", "parameter n": "9"}, age=1)
    _configuration(stage, "old", {**base, "parameter h": "0.3"}, age=100)
    _configuration(stage, "new", {**base, "parameter h": "0.2"}, age=10)
    _configuration(stage, "legacy", {}, age=0)  # no parts in common
    (stage / "no-manifest").mkdir()
    wanted = {**base, "parameter h": "0.5"}
    found = closest_configuration(tmp_path, "Denoise/current", wanted)
    assert found is not None
    assert found[0].name == "new"
    assert configuration_reason(tmp_path, "Denoise/current", wanted) == "parameter h: 0.2 → 0.5"
    upgraded = {**base, "scikit-image": "0.25.1"}
    assert (
        configuration_reason(tmp_path, "Denoise/x", upgraded)
        == "parameter h: 0.2 → 0.4; scikit-image 0.24.0 → 0.25.1"
    )


def test_an_existing_configuration_has_no_configuration_reason(tmp_path: Path) -> None:
    _configuration(tmp_path / "S", "abc", {"parameter h": "1"}, age=0)
    assert configuration_reason(tmp_path, "S/abc", {"parameter h": "1"}) is None
    assert configuration_reason(tmp_path, "T/abc", {"parameter h": "1"}) == "new configuration"


# -- reasons in runs ----------------------------------------------------------------------


def test_every_miss_of_a_run_has_a_reason(cache_dir: Path) -> None:
    first = _run(Cache(processor=AddStep(step_size=1), cache_dir=cache_dir))
    assert _reasons(first) == ["new configuration"] * 4
    changed = _run(Cache(processor=AddStep(step_size=2), cache_dir=cache_dir), count=6)
    assert _reasons(changed) == ["parameter step_size: 1 → 2"] * 6
    more = _run(Cache(processor=AddStep(step_size=2), cache_dir=cache_dir), count=8)
    assert _reasons(more) == [None] * 6 + ["new sample"] * 2
    entry = Cache(processor=AddStep(step_size=2), cache_dir=cache_dir).entry_path(
        number_samples(1)[0]
    )
    entry.write_bytes(b"garbage")
    with pytest.warns(CacheWarning):
        corrupt = _run(Cache(processor=AddStep(step_size=2), cache_dir=cache_dir), count=2)
    assert _reasons(corrupt) == ["entry corrupt", None]
    back = _run(Cache(processor=AddStep(step_size=1), cache_dir=cache_dir), count=5)
    assert _reasons(back) == [None] * 4 + ["new sample"]


def test_history_and_cache_stats_show_reasons(cache_dir: Path) -> None:
    _run(Cache(processor=AddStep(step_size=1), cache_dir=cache_dir), count=3)
    result = _run(Cache(processor=AddStep(step_size=3), cache_dir=cache_dir), count=3)
    _run(Cache(processor=AddStep(step_size=3), cache_dir=cache_dir), count=5)
    mixed = _run(Cache(processor=AddStep(step_size=3), cache_dir=cache_dir), count=8)
    history = result.history()
    assert history["reason"].tolist() == ["parameter step_size: 1 → 3"] * 3
    stats = mixed.cache_stats()
    assert stats.loc["AddStep", "reasons"] == "new sample (3)"
    assert stats.loc["AddStep", "hits"] == 5


def test_reasons_most_frequent_first_with_counts(cache_dir: Path) -> None:
    _run(Cache(processor=AddStep(), cache_dir=cache_dir), count=8)
    for sample in number_samples(2):
        Cache(processor=AddStep(), cache_dir=cache_dir).entry_path(sample).write_bytes(b"x")
    with pytest.warns(CacheWarning):
        result = _run(Cache(processor=AddStep(), cache_dir=cache_dir), count=13)
    assert result.cache_stats().loc["AddStep", "reasons"] == "new sample (5); entry corrupt (2)"


def test_upstream_change_is_named(cache_dir: Path) -> None:
    def pipeline(step: int) -> Compose:
        return Compose(AddStep(step_size=step), Cache(processor=DoubleStep(), cache_dir=cache_dir))

    _run(pipeline(1))
    result = _run(pipeline(2))
    assert set(_reasons(result)) == {None, "upstream AddStep: parameter step_size 1 → 2"}


def test_code_change_is_named(cache_dir: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CacheWarning)
        _run(Cache(processor=define(SOURCE)(), cache_dir=cache_dir))
        edited = define(SOURCE.replace("self.factor)", "self.factor + 1)"))
        result = _run(Cache(processor=edited(), cache_dir=cache_dir))
    assert set(_reasons(result)) == {"code of Scale.process changed"}


def test_reasons_come_from_any_parts_mapping(cache_dir: Path) -> None:
    # The key's parts may hold anything (distributions, helpers, globals): a manifest
    # written with other parts than the current key's still gives a readable reason.
    cache = Cache(processor=AddStep(), cache_dir=cache_dir)
    parts = dict(cache.configuration().parts)
    earlier = {**parts, "scikit-image": "0.24.0", "helper utils.scale": DIGEST_A}
    folder = cache_dir / "AddStep" / "0000000000000000"
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({"parts": earlier}))
    result = _run(cache, count=1)
    assert _reasons(result) == ["scikit-image removed; helper utils.scale removed"]
