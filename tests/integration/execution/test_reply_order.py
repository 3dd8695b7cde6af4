"""An executor's replies decode in any order, notebook classes included.

A worker that got a notebook class by value (an executor's payloads are plain
cloudpickle) used to name it, in its second reply, by a token it had minted itself
when its first reply defined it; a parent decoding the second reply first (two futures
of one worker done at once come back from ``wait`` in any order) failed with KeyError.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing

import pydantic
import pytest

from datamultiproc import BaseSample
from datamultiproc.execution._codec import decode_outcomes, encode_pipeline, encode_samples
from datamultiproc.execution._worker import run_payload
from tests.helpers import AddStep

pytestmark = pytest.mark.slow


def test_the_second_reply_decodes_before_the_first() -> None:
    # A sample class only its definition can bring (as a notebook cell's).
    cell_class = pydantic.create_model("CellItem", __base__=BaseSample, data=(int, 0))
    cell_class.__module__ = "__main__"
    key, blob = encode_pipeline(AddStep())
    payloads = [encode_samples([(n, cell_class(id=f"s{n}", data=n))]) for n in range(2)]
    context = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(1, mp_context=context) as executor:
        replies = [
            executor.submit(run_payload, key, blob, payload, b"", "run").result()
            for payload in payloads
        ]
    second, first = (decode_outcomes(reply) for _, reply in reversed(replies))
    assert [raw[2] is not None for raw in first + second] == [True, True]
