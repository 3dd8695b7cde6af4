"""Worker processes draw their own random numbers; the notebook keeps its own sequence.

Before, fork workers inherited numpy's global generator as the notebook had seeded it
(``np.random.seed(0)``), so every worker drew the same numbers: samples in different
workers got the same "random" value without a word.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
from collections import Counter
from typing import Any

import numpy as np
import pytest

from datamultiproc import run
from datamultiproc.execution import MultiprocessBackend
from datamultiproc.execution._pool import shutdown_pools
from tests.helpers import AddStep, DrawRandom, number_samples

pytestmark = pytest.mark.slow


def draws(backend: Any) -> list[int]:
    np.random.seed(0)  # as a notebook seeds for reproducibility
    result = run(DrawRandom(), number_samples(200), backend=backend, chunksize=10, progress=False)
    assert len({record.worker for record in result.records}) >= 2
    return [sample.data for sample in result]


@pytest.mark.parametrize("start_method", ["fork", "spawn", "forkserver"])
def test_each_worker_draws_its_own_numbers(start_method: str) -> None:
    shutdown_pools()
    values = draws(MultiprocessBackend(2, start_method=start_method, inline=False))
    assert Counter(values).most_common(1)[0][1] == 1  # no value drawn twice
    shutdown_pools()


def test_each_forked_executor_worker_draws_its_own_numbers() -> None:
    with cf.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as executor:
        values = draws(executor)
    assert Counter(values).most_common(1)[0][1] == 1


@pytest.mark.parametrize("backend", ["sequential", "thread", "process"])
def test_the_notebooks_own_sequence_is_left_as_seeded(backend: str) -> None:
    np.random.seed(0)
    expected = np.random.rand(3)
    np.random.seed(0)
    run(AddStep(), number_samples(50), backend=backend, workers=2, progress=False)
    assert np.array_equal(np.random.rand(3), expected)
