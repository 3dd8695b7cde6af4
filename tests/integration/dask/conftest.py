"""One local Dask cluster per test module: two worker processes on loopback."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    import dask
    from distributed import Client, LocalCluster

    # A sample that kills its worker is given up after two deaths instead of four
    # (the default, 3 allowed failures): the same code path, half the worker restarts.
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 1}),
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def wait_for_workers(client: Any, count: int, timeout: float = 60) -> None:
    """Wait until ``count`` workers are up (the nannies restart killed ones)."""
    deadline = time.monotonic() + timeout
    while len(client.nthreads()) < count:
        assert time.monotonic() < deadline, (
            f"only {len(client.nthreads())} workers after {timeout} s"
        )
        time.sleep(0.2)
