"""Edits between runs in fresh interpreters, and keys under several hash seeds and in workers."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

from datamultiproc import Cache
from tests.unit.storage._types import CountedAdd, configuration_digest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]

UTILS = """
import numpy as np
OFFSET = 1
TABLE = {"a": 1}
KERNEL = np.ones(3)
def inner(v):
    return v + OFFSET
def scale(v):
    return inner(v) * 2 + TABLE["a"] + KERNEL.sum()
"""

SCRIPT = """
import json, sys
from datamultiproc import BaseSample, Cache, Processor
import utils

class Item(BaseSample):
    value: float = 0
{extra_field}

class Step(Processor):
    names: set = {{"b", "a", "c"}}
    def process(self, sample):
        sample.value = utils.scale(1)
        return sample

cache = Cache(processor=Step(), cache_dir=sys.argv[1])
result = cache(Item(id="s"))
print(json.dumps({{"value": result.value, "label": getattr(result, "label", None),
                  "hits": cache.stats.hits, "digest": cache.configuration().digest,
                  "parts": cache.configuration().parts}}))
"""


def run_script(tmp_path: Path, extra_field: str = "", seed: str = "0") -> dict[str, object]:
    (tmp_path / "main.py").write_text(SCRIPT.format(extra_field=extra_field))
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}", "PYTHONHASHSEED": seed}
    out = subprocess.run(
        [sys.executable, str(tmp_path / "main.py"), str(tmp_path / "cache")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "edit",
    [
        ("return v + OFFSET", "return v + OFFSET + 1"),  # a helper's helper in the user's module
        ("OFFSET = 1", "OFFSET = 2"),  # a module constant
        ('TABLE = {"a": 1}', 'TABLE = {"a": 5}'),  # a module dict
        ("KERNEL = np.ones(3)", "KERNEL = np.ones(3)\nKERNEL[0] = 9"),  # an array changed in place
    ],
    ids=["nested-helper", "constant", "dict", "array-in-place"],
)
def test_user_module_edit_between_fresh_interpreters_reruns(
    tmp_path: Path, edit: tuple[str, str]
) -> None:
    (tmp_path / "utils.py").write_text(UTILS)
    first = run_script(tmp_path)
    assert run_script(tmp_path)["hits"] == 1
    (tmp_path / "utils.py").write_text(UTILS.replace(*edit))
    second = run_script(tmp_path)
    assert second["hits"] == 0
    assert second["value"] != first["value"]


def test_formatting_and_comments_in_the_user_module_keep_hits(tmp_path: Path) -> None:
    (tmp_path / "utils.py").write_text(UTILS)
    run_script(tmp_path)
    edited = UTILS.replace("def inner(v):\n", 'def inner(v):\n    # a comment\n    """Doc."""\n\n')
    (tmp_path / "utils.py").write_text(edited)
    assert run_script(tmp_path)["hits"] == 1


def test_sample_class_gaining_a_field_never_lacks_it(tmp_path: Path) -> None:
    (tmp_path / "utils.py").write_text(UTILS)
    run_script(tmp_path)
    second = run_script(tmp_path, extra_field='    label: str = "x"')
    assert second["label"] == "x"


def test_key_and_parts_are_the_same_under_every_hash_seed(tmp_path: Path) -> None:
    (tmp_path / "utils.py").write_text(UTILS)
    results = [run_script(tmp_path, seed=seed) for seed in ("0", "1", "12345", "random")]
    assert len({r["digest"] for r in results}) == 1
    assert len({json.dumps(r["parts"]) for r in results}) == 1
    assert results[0]["parts"]["parameter names"] == "{'a', 'b', 'c'}"  # type: ignore[index]


@pytest.mark.parametrize("method", multiprocessing.get_all_start_methods())
def test_set_parameter_and_user_data_keys_are_identical_in_workers(method: str) -> None:
    from tests.unit.storage._types import define

    source = (
        "from datamultiproc import Processor\nTABLE = {'a': [1, 2]}\n"
        "class WithSet(Processor):\n    names: set = {'x', 'y', 'z'}\n"
        "    def process(self, sample):\n        sample.data = TABLE['a'][0]\n        return sample\n"
    )
    pair = (Cache(processor=define(source, "WithSet")(), cache_dir="unused"), (CountedAdd(),))
    expected = pair[0].configuration(pair[1]).digest
    with multiprocessing.get_context(method).Pool(1) as pool:
        assert pool.map(configuration_digest, [cloudpickle.dumps(pair)]) == [expected]


def test_script_has_no_stray_indentation() -> None:
    assert textwrap.dedent(SCRIPT) == SCRIPT


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_set_parameter_worker_counts_reach_cache_stats(tmp_path: Path, method: str) -> None:
    from datamultiproc import run
    from tests.unit.storage._types import NumberSample, TagWithSet

    samples = [NumberSample(id=f"s{i}", data=i) for i in range(12)]
    cache = Cache(processor=TagWithSet(), cache_dir=tmp_path)
    options: dict[str, Any] = {
        "workers": 2,
        "backend": "process",
        "start_method": method,
        "progress": False,
    }
    first = run(cache, samples, **options)
    assert [s.data for s in first] == [i + 4 for i in range(12)]
    second = run(cache, [NumberSample(id=f"s{i}", data=i) for i in range(12)], **options)
    assert [s.data for s in second] == [i + 4 for i in range(12)]
    assert (cache.stats.misses, cache.stats.hits) == (12, 12)
    folders = {p.parent for p in tmp_path.rglob("*.pickle")}
    assert folders == {tmp_path / cache.configuration().folder}  # the parent's key, too
