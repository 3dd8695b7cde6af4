"""Cache keys follow the environment variables the code reads by name, and decimal's context.

Before, a processor reading ``os.environ["LABEL_SET"]`` was served the entries of
the old value after the notebook changed the variable, without a word.
"""

from __future__ import annotations

import decimal
import os
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from datamultiproc import BaseSample, Cache, run
from datamultiproc.storage import begin_run

VARIABLE = "DATAMULTIPROC_TEST_LABELS"


class Item(BaseSample):
    label: str = ""


@pytest.fixture(autouse=True)
def clean_environment() -> Iterator[None]:
    os.environ.pop(VARIABLE, None)
    yield
    os.environ.pop(VARIABLE, None)


def step_reading(expression: str, imports: str = "import os") -> Any:
    source = f"""
    {imports}
    from datamultiproc import Processor

    class Step(Processor):
        def process(self, sample):
            sample.label = {expression}
            return sample
    """
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(compile(textwrap.dedent(source), "<cell>", "exec"), namespace)
    return namespace["Step"]()


READS = {
    "os.environ.get": (f'os.environ.get("{VARIABLE}", "v0")', "import os"),
    "os.environ[]": (
        f'os.environ["{VARIABLE}"] if "{VARIABLE}" in os.environ else "v0"',
        "import os",
    ),
    "os.getenv": (f'os.getenv("{VARIABLE}", "v0")', "import os"),
    "from os import environ": (f'environ.get("{VARIABLE}", "v0")', "from os import environ"),
    "from os import getenv": (f'getenv("{VARIABLE}") or "v0"', "from os import getenv"),
}


@pytest.mark.parametrize("read", sorted(READS))
def test_a_changed_variable_is_a_new_key(read: str) -> None:
    expression, imports = READS[read]
    cache = Cache(processor=step_reading(expression, imports), cache_dir="unused")
    digests = []
    for value in (None, "v1", "v2", None):
        if value is None:
            os.environ.pop(VARIABLE, None)
        else:
            os.environ[VARIABLE] = value
        begin_run()
        digests.append(cache.configuration().digest)
    assert len(set(digests[:3])) == 3
    assert digests[3] == digests[0]  # back to unset: the first configuration again


def test_code_that_reads_no_environment_keeps_its_key() -> None:
    cache = Cache(processor=step_reading(f'"{VARIABLE}"'), cache_dir="unused")
    begin_run()
    before = cache.configuration().digest
    os.environ[VARIABLE] = "v1"
    begin_run()
    assert cache.configuration().digest == before


def test_reruns_compute_with_the_new_value_and_the_value_stays_out_of_the_manifest(
    tmp_path: Path,
) -> None:
    cache = Cache(processor=step_reading(READS["os.environ.get"][0]), cache_dir=str(tmp_path))
    seen, hits = [], []
    for value in ("v1", "secret-token-value", "v1"):
        os.environ[VARIABLE] = value
        result = run(cache, [Item(id="a")], backend="sequential", progress=False)
        seen.append([sample.label for sample in result])
        hits.append(int(result.cache_stats()["hits"].sum()))
    assert seen == [["v1"], ["secret-token-value"], ["v1"]]
    assert hits == [0, 0, 1]  # the first value's entry is served again
    manifests = "".join(path.read_text() for path in tmp_path.rglob("manifest.json"))
    assert f"environment variable {VARIABLE}" in manifests
    assert "secret-token-value" not in manifests
    assert len(list(tmp_path.rglob("manifest.json"))) == 2


def test_other_variables_do_not_change_the_key_of_code_that_reads_one() -> None:
    # A kernel's or a test runner's own variables differ from one session to the next.
    for expression, imports in READS.values():
        cache = Cache(processor=step_reading(expression, imports), cache_dir="unused")
        begin_run()
        before = cache.configuration().digest
        os.environ["DATAMULTIPROC_TEST_UNRELATED"] = "changed"
        try:
            begin_run()
            assert cache.configuration().digest == before, imports
        finally:
            del os.environ["DATAMULTIPROC_TEST_UNRELATED"]


def test_code_using_decimal_is_keyed_on_the_decimal_context() -> None:
    # Before, a hit served an entry computed at the old precision after the notebook
    # changed decimal.getcontext().prec.
    cache = Cache(
        processor=step_reading("str(decimal.Decimal(1) / decimal.Decimal(7))", "import decimal"),
        cache_dir="unused",
    )
    plain = Cache(processor=step_reading('"1/7"', "import decimal"), cache_dir="unused")
    context = decimal.getcontext()
    precision = context.prec
    begin_run()
    before, plain_before = cache.configuration().digest, plain.configuration().digest
    try:
        decimal.Decimal(1) / decimal.Decimal(3)  # conditions met: no change of settings
        begin_run()
        assert cache.configuration().digest == before
        context.prec = 50
        begin_run()
        assert cache.configuration().digest != before
        assert plain.configuration().digest == plain_before  # no decimal in its code
        assert cache.configuration().parts["decimal context"].startswith("prec=50")
    finally:
        context.prec = precision
    begin_run()
    assert cache.configuration().digest == before
