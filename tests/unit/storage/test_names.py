"""Hostile sample ids stay inside the directory and never share a file."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from datamultiproc import Cache, Save
from datamultiproc.storage import entry_name
from tests.unit.storage._types import CountedAdd, NumberSample

HOSTILE = [
    "",
    ".",
    "..",
    "../escape",
    "../../etc/passwd",
    "/abs/path",
    "a/b",
    "a\\b",
    "..\\..\\windows",
    "nul\x00byte",
    "CON",
    "con",
    "con.txt",
    "Con.Txt",
    "LPT1",
    "com1.pickle",
    "aux",
    'a<b>c:d"e|f?g*h',
    "trailing.",
    "trailing ",
    " leading",
    ".hidden",
    "~tilde",
    "x" * 5000,
    "x" * 4999 + "y",
    "Sample",
    "sample",
    "SAMPLE",
    "a_b",
    "a b",
    "é",
    "e\u0301",
    "日本語",
    "emoji-🙂",
    "tab\there",
    "newline\nhere",
    "sample~deadbeef",
    "%2e%2e",
    "\udcff-lone-surrogate",
]


def random_ids(count: int) -> list[str]:
    rng = random.Random(3)
    alphabet = 'aA./\\:*?<>|"~ _-\x00é' + "".join(chr(c) for c in range(0x20, 0x7F))
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) for _ in range(count)]


def test_readable_ids_stay_as_they_are() -> None:
    for sample_id in ["sample-0", "s1", "image_0001.png", "2024-01-01"]:
        assert entry_name(sample_id) == sample_id


@pytest.mark.parametrize("ids", [HOSTILE, random_ids(2000)], ids=["hostile", "random"])
def test_names_are_safe_and_collision_free_ignoring_case(ids: list[str]) -> None:
    ids = list(dict.fromkeys(ids))
    names = [entry_name(sample_id) for sample_id in ids]
    assert len({name.casefold() for name in names}) == len(ids)
    for name in names:
        assert name
        assert len(name.encode()) <= 200
        assert not set(name) & set('/\\:*?"<>|\x00')
        assert name.isascii()
        assert name.isprintable()
        assert not name.startswith(".")
        assert not name.endswith((".", " "))
        assert name.split(".")[0].lower() not in {"con", "prn", "aux", "nul", "com1", "lpt1"}


def test_hostile_ids_stay_inside_and_round_trip(tmp_path: Path) -> None:
    cache_dir = tmp_path / "inner" / "cache"
    save_dir = tmp_path / "inner" / "save"
    cache = Cache(processor=CountedAdd(), cache_dir=cache_dir)
    save = Save(save_to_dir=save_dir)
    for index, sample_id in enumerate(HOSTILE):
        save(cache(NumberSample(id=sample_id, data=index)))
    for index, sample_id in enumerate(HOSTILE):
        loaded = cache(NumberSample(id=sample_id, data=-1))
        assert (loaded.id, loaded.data) == (sample_id, index + 1)
    assert cache.stats.hits == len(HOSTILE)
    inside = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert all(p.resolve().is_relative_to((tmp_path / "inner").resolve()) for p in inside)
    entries = [p for p in inside if p.suffix == ".pickle"]
    assert len(entries) == 2 * len(HOSTILE)
