"""ClientShare, the Dask client's part in a run: what it keeps between runs and when it stays out.

The runs themselves, on a real cluster, are in ``tests/integration/dask/test_dask_inline.py``.
"""

from __future__ import annotations

import time

from datamultiproc.execution._codec import encode_pipeline
from datamultiproc.execution._dask_inline import ClientShare
from tests.helpers import AddStep

BLOB = encode_pipeline(AddStep())[1]


class FakeClient:
    """Stands in for a ``distributed.Client``: figures are kept per client object."""


def _share(client: FakeClient, *, enabled: bool = True, key: bytes = b"key") -> ClientShare:
    return ClientShare(client, key, BLOB, enabled=enabled)


def _won(share: ClientShare) -> None:
    """Make the share's policy look like a run in which the client took over."""
    policy = share.policy
    for _ in range(21):  # the first chunk starts the clock
        policy.observe_results(10, 10 * 20e-6)
    policy.first_result = policy.first_cpu = 0.0
    policy.last_result = 30e-6 * policy.returned
    policy.last_cpu = 10e-6 * policy.returned
    policy.active, policy.inline = True, 5e-6


def test_a_clean_run_the_client_won_lets_the_next_run_probe_it_first() -> None:
    client = FakeClient()
    first = _share(client)
    assert first.policy.recalled is None
    _won(first)
    first.close(keep=True)
    again = _share(client)
    assert again.policy.recalled is not None
    assert again.takes_new  # no sample to the workers before the client's probe
    assert _share(client, key=b"other").policy.recalled is None  # per pipeline
    assert _share(FakeClient()).policy.recalled is None  # and per client


def test_an_interrupted_run_leaves_no_figures() -> None:
    client = FakeClient()
    first = _share(client)
    _won(first)
    first.close(keep=True)
    interrupted = _share(client)
    _won(interrupted)
    interrupted.close(keep=False)
    assert _share(client).policy.recalled is None


def test_a_run_without_the_client_keeps_the_figures_of_one_with_it() -> None:
    client = FakeClient()
    first = _share(client)
    _won(first)
    first.close(keep=True)
    _share(client, enabled=False).close(keep=True)  # inline=False, or Cache/Save
    assert _share(client).policy.recalled is not None


def test_after_a_worker_died_every_sample_goes_to_the_workers() -> None:
    client = FakeClient()
    share = _share(client)
    _won(share)
    assert share.policy.chunk_size() > 0
    share.worker_died()
    assert share.policy.chunk_size() == 0
    assert not share.takes_new
    assert not share.measuring  # full chunks for the rest of the run
    share.close(keep=True)
    assert _share(client).policy.recalled is None  # nor does the next run start in the client


def test_a_lost_probe_keeps_the_client_out_of_the_next_run_too() -> None:
    client = FakeClient()
    first = _share(client)
    policy = first.policy
    for _ in range(21):  # the workers' pace: 3 ms per sample, 2 ms of a worker's CPU
        policy.observe_results(10, 10 * 0.002)
    policy.first_result = policy.first_cpu = 0.0
    policy.last_result = 0.003 * policy.returned
    policy.last_cpu = 0.001 * policy.returned
    assert policy.chunk_size() > 0  # a probe
    policy.probe_started -= 0.02  # that took 20 ms
    policy.observe_inline(0.02, 1)
    first.close(keep=True)
    again = _share(client)
    assert again.policy.next_probe > time.monotonic() + 1.0
    assert _share(client, key=b"other").policy.next_probe == 0.0
