"""Cache keys follow code and data by name: every edit that can change a result is a new key."""

from __future__ import annotations

import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # noqa: TID251 (pandas values as cache-key parameters)
import pytest

from datamultiproc import BaseSample, Cache
from datamultiproc.exceptions import CacheWarning
from datamultiproc.storage import begin_run, content_digest
from datamultiproc.storage._schema import upgrade_sample

HEADER = """
import enum
import functools
from typing import ClassVar
import numpy as np
from pydantic import BaseModel, ConfigDict
from datamultiproc import BaseSample, Processor
"""


def namespace_of(source: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(compile(HEADER + textwrap.dedent(source), "<cell>", "exec"), namespace)
    return namespace


def cache_of(namespace: dict[str, Any], name: str = "Step", **params: Any) -> Cache:
    return Cache(processor=namespace[name](**params), cache_dir="unused")


def key(cache: Cache) -> str:
    return cache.configuration().digest


def fresh(source: str, **params: Any) -> str:
    return key(cache_of(namespace_of(source), **params))


# Each case: source, an edit made by exec-ing code in the same namespace, or None to compare
# a redefinition (source.replace(old, new)) against the original.
GLOBAL_DATA = {
    "dict": ("TABLE = {'a': 1}", "TABLE['a'] = 2", "TABLE['a']"),
    "list": ("ITEMS = [1, 2]", "ITEMS[1] = 3", "ITEMS[1]"),
    "array": ("KERNEL = np.ones(3)", "KERNEL[1] = 5.0", "KERNEL.sum()"),
    "lambda-in-dict": ("OPS = {'f': lambda v: v + 1}", "OPS['f'] = lambda v: v + 2", "OPS['f'](1)"),
    "partial": (
        "def add(a, b):\n    return a + b\nADD = functools.partial(add, 1)",
        "ADD = functools.partial(add, 2)",
        "ADD(1)",
    ),
    "lru-cache": (
        "@functools.lru_cache\ndef cached(v):\n    return v + 1",
        "@functools.lru_cache\ndef cached(v):\n    return v + 2",
        "cached(1)",
    ),
    "vectorize": (
        "def one(v):\n    return v + 1\nVEC = np.vectorize(one)",
        "def one(v):\n    return v + 2\nVEC = np.vectorize(one)",
        "VEC(1)",
    ),
    "config-instance": (
        "class Config(BaseModel):\n    alpha: float = 1.0\nCONFIG = Config()",
        "CONFIG.alpha = 2.0",
        "CONFIG.alpha",
    ),
    "config-method": (
        "class Config(BaseModel):\n    def f(self):\n        return 1\nCONFIG = Config()",
        "Config.f.__code__ = (lambda self: 2).__code__",
        "CONFIG.f()",
    ),
    "extra-fields": (
        "class Extra(BaseModel):\n    model_config = ConfigDict(extra='allow')\nCONFIG = Extra(a=1)",
        "CONFIG.a = 2",
        "CONFIG.a",
    ),
    "enum-value": (
        "class Mode(enum.Enum):\n    FAST = 1",
        "class Mode(enum.Enum):\n    FAST = 2",
        "Mode.FAST.value",
    ),
}


def step_source(setup: str, expression: str) -> str:
    return (
        f"{setup}\n\nclass Step(Processor):\n    def process(self, sample):\n"
        f"        sample.value = {expression}\n        return sample\n"
    )


@pytest.mark.parametrize("case", sorted(GLOBAL_DATA))
def test_data_the_code_reads_is_keyed_by_value(case: str) -> None:
    setup, edit, expression = GLOBAL_DATA[case]
    namespace = namespace_of(step_source(setup, expression))
    cache = cache_of(namespace)
    before = key(cache)
    assert key(cache_of(namespace_of(step_source(setup, expression)))) == before
    exec(edit, namespace)
    begin_run()  # a new run (the runner does this): data is read afresh
    assert key(cache) != before, f"{case}: the edit did not change the existing Cache's key"
    assert key(cache_of(namespace)) != before


def test_code_swapped_in_place_is_a_miss_for_an_existing_cache(tmp_path: Path) -> None:
    namespace = namespace_of(
        "class Step(Processor):\n    def process(self, sample):\n"
        "        sample.value = 1\n        return sample\n"
    )
    step_cls = namespace["Step"]
    cache = Cache(processor=step_cls(), cache_dir=tmp_path)
    sample_cls = namespace_of("class S(BaseSample):\n    value: int = 0\n")["S"]
    assert cache(sample_cls(id="a")).value == 1
    replacement = namespace_of(
        "def process(self, sample):\n    sample.value = 2\n    return sample\n"
    )["process"]
    step_cls.process.__code__ = replacement.__code__  # what %autoreload 2 does
    assert cache(sample_cls(id="a")).value == 2  # no run boundary needed
    step_cls.process = replacement  # assigning the method
    replacement.__code__ = (lambda self, sample: sample).__code__
    assert cache(sample_cls(id="a")).value == 0
    assert cache.stats.hits == 0


def test_helper_class_and_classvar_and_parameter_class_methods_count() -> None:
    base = """
    class Factor(BaseModel):
        k: int = 2
        def factor(self):
            return self.k * 1
    class Step(Processor):
        SCALE: ClassVar[np.ndarray] = np.ones(2)
        TABLE: ClassVar[dict] = {"a": 1}
        factor: object = Factor()
        def process(self, sample):
            sample.value = self.factor.factor() * self.SCALE.sum() * self.TABLE["a"]
            return sample
    """
    first = fresh(base)
    assert fresh(base) == first
    assert fresh(base.replace("self.k * 1", "self.k * 3")) != first  # parameter's own class
    assert fresh(base.replace("np.ones(2)", "np.ones(3)")) != first  # ClassVar array
    assert fresh(base.replace('{"a": 1}', '{"a": 2}')) != first  # ClassVar dict


def test_only_names_loaded_as_globals_count() -> None:
    source = (
        "class Step(Processor):\n    def process(self, sample):\n"
        "        sample.x = sample.x + 1\n        return sample\n"
    )
    namespace = namespace_of(source)
    cache = cache_of(namespace)
    before = key(cache)
    namespace["x"] = 5  # an unrelated notebook variable named like an attribute
    begin_run()
    assert key(cache) == before == key(cache_of(namespace))


def test_state_the_code_writes_is_not_keyed() -> None:
    source = """
    COUNTS = {}
    LOG = []
    class Step(Processor):
        def process(self, sample):
            COUNTS[sample.id] = COUNTS.get(sample.id, 0) + 1
            LOG.append(sample.id)
            return sample
    """
    namespace = namespace_of(source)
    cache = cache_of(namespace)
    before = key(cache)
    namespace["COUNTS"]["a"] = 3
    namespace["LOG"].append("a")
    begin_run()
    assert key(cache) == before


def test_user_module_helpers_are_followed_transitively(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module_file = tmp_path / "dmp_user_helpers.py"
    module_file.write_text(
        "def inner(v):\n    return v + 1\n\ndef scale(v):\n    return inner(v) * 2\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import dmp_user_helpers  # type: ignore[import-not-found]

    namespace = namespace_of(
        "import dmp_user_helpers\nfrom dmp_user_helpers import scale\n"
        "class Step(Processor):\n    def process(self, sample):\n"
        "        sample.value = scale(1) + dmp_user_helpers.scale(2)\n        return sample\n"
    )
    cache = cache_of(namespace)
    config = cache.configuration()
    assert "helper dmp_user_helpers.scale" in config.parts
    assert "helper dmp_user_helpers.inner" in config.parts
    before = config.digest
    dmp_user_helpers.inner.__code__ = (lambda v: v + 2).__code__
    assert key(cache) != before
    monkeypatch.delitem(sys.modules, "dmp_user_helpers")


def test_distributions_are_keyed_by_name_and_version() -> None:
    parts = (
        cache_of(
            namespace_of(
                "class Step(Processor):\n    def process(self, sample):\n"
                "        sample.value = np.mean([1])\n        return sample\n"
            )
        )
        .configuration()
        .parts
    )
    assert parts["numpy"] == np.__version__


def test_parts_describe_parameters_code_and_upstream() -> None:
    namespace = namespace_of(
        "class Step(Processor):\n    h: float = 0.4\n    names: set = set()\n"
        "    def process(self, sample):\n        return sample\n"
        "class Normalise(Processor):\n    method: str = 'zscore'\n"
        "    def process(self, sample):\n        return sample\n"
    )
    cache = Cache(processor=namespace["Step"](names={"b", "a"}), cache_dir="unused")
    config = cache.configuration((namespace["Normalise"](),))
    assert config.parts["parameter h"] == "0.4"
    assert config.parts["parameter names"] == "{'a', 'b'}"
    assert len(config.parts["code of Step.process"]) == 12
    assert config.parts["upstream Normalise: parameter method"] == "'zscore'"
    assert config.parts["key mode"] == "id"
    assert config.manifest["parts"] == config.parts


def test_pandas_parameters_are_keyed_by_content() -> None:
    namespace = namespace_of(
        "class Step(Processor):\n    table: object = None\n"
        "    def process(self, sample):\n        return sample\n"
    )
    frame = pd.DataFrame({"a": np.arange(1000)})
    changed = frame.copy()
    changed.iloc[500, 0] = -1  # in the middle: invisible in the repr
    assert key(cache_of(namespace, table=frame)) == key(cache_of(namespace, table=frame.copy()))
    assert key(cache_of(namespace, table=frame)) != key(cache_of(namespace, table=changed))
    assert key(cache_of(namespace, table=frame["a"])) != key(
        cache_of(namespace, table=changed["a"])
    )


class MaskedSample(BaseSample):
    values: Any


def test_masked_arrays_include_the_mask_also_under_content_keys() -> None:
    data = np.arange(5.0)
    first = np.ma.masked_array(data, mask=[False, False, True, False, False])
    second = np.ma.masked_array(data, mask=[False, True, False, False, False])
    assert content_digest(MaskedSample(id="a", values=first)) != content_digest(
        MaskedSample(id="a", values=second)
    )


def test_a_value_that_cannot_be_keyed_warns_once_naming_processor_and_name() -> None:
    namespace = namespace_of(
        "import threading\nLOCK = threading.Lock()\n"
        "class Unkeyable(Processor):\n    def process(self, sample):\n"
        "        with LOCK:\n            return sample\n"
    )
    with pytest.warns(CacheWarning, match=r"Unkeyable.*global LOCK"):
        key(cache_of(namespace, "Unkeyable"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        key(cache_of(namespace, "Unkeyable"))


def test_a_hit_written_before_the_sample_class_gained_a_field_is_upgraded() -> None:
    namespace = namespace_of(
        "class Labelled(BaseSample):\n    value: int = 0\n    label: str = 'x'\n"
    )
    old = namespace["Labelled"](id="a")
    del old.__dict__["label"]
    assert upgrade_sample(old)
    assert old.label == "x"
    required = namespace_of("class Needs(BaseSample):\n    value: int\n")["Needs"].model_construct(
        id="a"
    )
    assert not upgrade_sample(required)


def test_key_walk_terminates_on_recursive_helpers() -> None:
    source = """
    def even(n):
        return n == 0 or odd(n - 1)
    def odd(n):
        return n != 0 and even(n - 1)
    class Step(Processor):
        def process(self, sample):
            sample.value = even(4)
            return sample
    """
    assert fresh(source) == fresh(source)
    assert fresh(source) != fresh(source.replace("n != 0", "n != 1"))


def test_the_declared_sample_class_schema_is_part_of_the_key() -> None:
    source = """
    class Item(BaseSample):
        value: int = 0
    class Step(Processor):
        def process(self, sample: Item) -> Item:
            return sample
    """
    first = cache_of(namespace_of(source)).configuration()
    assert "sample schema" in first.parts
    gained = fresh(source.replace("value: int = 0", "value: int = 0\n        label: str = 'x'"))
    assert gained != first.digest
    retyped = fresh(source.replace("value: int = 0", "value: float = 0"))
    assert retyped != first.digest


def test_set_parameters_give_the_same_text_in_any_order() -> None:
    namespace = namespace_of(
        "class Step(Processor):\n    names: set = set()\n"
        "    def process(self, sample):\n        return sample\n"
    )
    first = namespace["Step"](names={"b", "a", "c"}).describe_params()
    assert first == "names={'a', 'b', 'c'}"
    assert namespace["Step"](names={"c", "a", "b"}).describe_params() == first


def test_upgrading_a_distribution_the_code_calls_changes_the_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.metadata

    from datamultiproc.storage import _origins

    source = (
        "class Step(Processor):\n    def process(self, sample):\n"
        "        sample.value = np.mean([1])\n        return sample\n"
    )
    before = cache_of(namespace_of(source)).configuration()
    real_version = importlib.metadata.version
    monkeypatch.setattr(
        importlib.metadata,  # the module _origins calls (``import importlib.metadata``)
        "version",
        lambda name: "99.0" if name == "numpy" else real_version(name),
    )
    _origins._top_level_origin.cache_clear()
    try:
        after = cache_of(namespace_of(source)).configuration()
    finally:
        monkeypatch.undo()
        _origins._top_level_origin.cache_clear()
    assert after.parts["numpy"] == "99.0"
    assert after.digest != before.digest


def test_plan_sees_data_changed_in_place_after_a_run(tmp_path: Path) -> None:
    namespace = namespace_of(
        step_source("TABLE = {'a': 1}", "TABLE['a']")
        + "class Item(BaseSample):\n    value: int = 0\n"
    )
    cache = Cache(processor=namespace["Step"](), cache_dir=tmp_path)
    cache(namespace["Item"](id="s"))
    assert cache.plan([namespace["Item"](id="s")]).stages[0].hits == 1
    namespace["TABLE"]["a"] = 2
    assert cache.plan([namespace["Item"](id="s")]).stages[0].misses == 1
