"""Large arrays as anonymous memory files between real processes: round trips and leaks."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from datamultiproc import Compose, run
from datamultiproc.execution import _transport as transport
from datamultiproc.execution._codec import encode_shared, read_message
from datamultiproc.execution._pool import shutdown_pools
from tests.helpers import AnySample, KillOn, MakeArray, TouchArrays, memfds

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not transport.available(), reason="needs memfd and descriptor passing"),
]
ROOT = Path(__file__).resolve().parents[3]
BIG = transport.SHARED_BYTES // 8 + 1000  # float64 elements: just over the threshold


def _holders() -> list[int]:
    """Pids of every process that still holds one of this package's memory files."""
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if memfds(name):
                    pids.append(int(name))
            except OSError:
                continue  # gone, or not ours
    return pids


@pytest.fixture(autouse=True)
def _clean() -> None:
    """Start from no live maps: earlier tests' results may wait for the collector."""
    gc.collect()
    if memfds():
        pytest.fail("an earlier test left shared memory mapped")


def _shm() -> set[str]:
    # Semaphores and the multiprocessing heap's short-lived files belong to other runs.
    return {name for name in os.listdir("/dev/shm") if not name.startswith(("sem.", "pym-"))}


def _payload() -> dict[str, object]:
    big = np.arange(BIG, dtype=np.float64)
    return {
        "float64": big,
        "int8": (np.arange(transport.SHARED_BYTES + 7) % 100).astype(np.int8),
        "complex": np.arange(BIG // 2, dtype=np.complex128) * (1 + 2j),
        "bool": np.arange(transport.SHARED_BYTES + 3) % 3 == 0,
        "fortran": np.asfortranarray(np.arange(BIG, dtype=np.float64).reshape(-1, 8)),
        "strided": big[::2],
        "zero_d": np.array(3.5),
        "small": np.arange(5),
        "objects": np.array([{"a": 1}, [2], "three"] * 1000, dtype=object),
        "nested": [{"deep": [big * 2, (big[:10],)]}],
    }


def _assert_same(left: object, right: object) -> None:
    if isinstance(left, np.ndarray):
        assert isinstance(right, np.ndarray)
        assert left.dtype == right.dtype
        assert left.shape == right.shape
        if left.dtype == object:
            assert left.tolist() == right.tolist()
        else:
            np.testing.assert_array_equal(left, right)
    elif isinstance(left, dict):
        assert isinstance(right, dict)
        assert left.keys() == right.keys()
        for key in left:
            _assert_same(left[key], right[key])
    elif isinstance(left, (list, tuple)):
        assert type(left) is type(right)
        assert len(left) == len(right)
        for a, b in zip(left, right, strict=True):
            _assert_same(a, b)
    else:
        assert left == right


def test_message_round_trip_through_a_socket_maps_large_buffers(tmp_path: Path) -> None:
    import socket

    left, right = socket.socketpair()
    stream = os.open(tmp_path / "stream", os.O_RDWR | os.O_CREAT)
    try:
        payload = _payload()
        pieces, fds = encode_shared(payload)
        # The contiguous buffers over the threshold, wherever they sit; the strided
        # view and the object array travel in the pickle stream.
        assert len(fds) == 6
        transport.send_fds(left, fds)
        for fd in fds:
            os.close(fd)
        for piece in pieces:
            view = memoryview(piece).cast("B")
            while view:
                view = view[os.write(stream, view) :]
        os.lseek(stream, 0, os.SEEK_SET)
        received = read_message(stream, right)
    finally:
        for end in (left, right):
            end.close()
        os.close(stream)
    _assert_same(payload, received)
    assert memfds() == 6  # one map per shared buffer, no descriptor left open
    assert received["float64"].flags.writeable
    received["float64"][0] = -1.0  # private memory: the original stays as it was
    assert payload["float64"][0] == 0.0  # type: ignore[index]
    del received
    gc.collect()
    assert memfds() == 0


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_arrays_round_trip_through_workers(start_method: str) -> None:
    samples = [AnySample(id=f"a{i}", payload=_payload()) for i in range(4)]
    before = [s.model_copy(deep=True) for s in samples]
    result = run(TouchArrays(), samples, workers=2, start_method=start_method, progress=False)
    assert result.n_ok == 4, result.failures
    for original, out, kept in zip(samples, result.samples, before, strict=True):
        _assert_same(kept.payload, out.payload)
        _assert_same(kept.payload, original.payload)  # the caller's arrays are untouched
        assert out.payload["float64"].flags.writeable  # type: ignore[index]


def test_result_arrays_are_writable_and_outlive_later_runs() -> None:
    first = run(MakeArray(size=BIG), [AnySample(id="m1")], workers=2, progress=False)
    made = first.samples[0].payload["made"]  # type: ignore[index]
    assert made.flags.writeable
    made[:3] = -1.0
    second = run(MakeArray(size=BIG), [AnySample(id="m1")], workers=2, progress=False)
    again = second.samples[0].payload["made"]  # type: ignore[index]
    assert again[0] == 1.0
    assert made[0] == -1.0
    assert made[-1] == BIG  # still mapped, still intact, after another run
    assert memfds() == 2  # one map per live result array, no descriptors
    del first, second, made, again
    gc.collect()
    assert memfds() == 0


def test_nothing_left_after_a_normal_run() -> None:
    result = run(MakeArray(size=BIG), [AnySample(id=f"m{i}") for i in range(20)], progress=False)
    assert result.n_ok == 20
    from datamultiproc.execution._pool import _IDLE

    workers = [w.process.pid for pool in _IDLE.values() for w in pool.live()]
    assert workers
    assert all(memfds(pid) == 0 for pid in workers)  # warm workers keep nothing
    del result
    gc.collect()
    assert memfds() == 0


def test_nothing_left_after_a_worker_is_killed_mid_sample() -> None:
    samples = [AnySample(id=f"m{i}", payload={"big": np.ones(BIG)}) for i in range(12)]
    pipeline = Compose(KillOn(ids=["m5"]), MakeArray(size=BIG))
    result = run(pipeline, samples, workers=2, progress=False, on_error="skip")
    assert [f.sample_id for f in result.failures] == ["m5"]
    assert result.n_ok == 11
    del result
    gc.collect()
    shutdown_pools()
    assert _holders() == []


SCRIPT = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    from datamultiproc import Compose, run
    from tests.helpers import AnySample, MakeArray, SleepOn

    samples = [AnySample(id=f"m{i}", payload={"big": np.ones(70_000)}) for i in range(400)]
    pipeline = Compose(SleepOn(ids=[f"m{i}" for i in range(400)], seconds=0.05), MakeArray(size=70_000))
    print(os.getpid(), flush=True)
    try:
        run(pipeline, samples, workers=2, start_method=sys.argv[1], progress=False)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    """
)


def _start_child(start_method: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, start_method],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert child.stdout is not None
    child.stdout.readline()
    return child


def _wait_for_holders(pids: set[int]) -> None:
    # With fork, workers of a killed parent may linger (issue 13's "no orphans", fixed
    # elsewhere); what matters here is that their memory goes with them.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and set(_holders()) & pids:
        time.sleep(0.1)


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_nothing_left_after_ctrl_c(start_method: str) -> None:
    import psutil

    shm_before = _shm()
    child = _start_child(start_method)
    time.sleep(2.0)  # in the middle of the run, arrays in flight both ways
    workers = {p.pid for p in psutil.Process(child.pid).children(recursive=True)}
    os.kill(child.pid, signal.SIGINT)
    out, err = child.communicate(timeout=60)
    assert "interrupted" in out, err
    _wait_for_holders(workers | {child.pid})
    assert not set(_holders()) & (workers | {child.pid})
    assert _shm() <= shm_before


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_nothing_left_after_the_parent_is_killed(start_method: str) -> None:
    import psutil

    shm_before = _shm()
    child = _start_child(start_method)
    time.sleep(2.0)
    workers = [psutil.Process(p.pid) for p in psutil.Process(child.pid).children(recursive=True)]
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    _, alive = psutil.wait_procs(workers, timeout=5)
    for worker in alive:  # see _wait_for_holders: orphans are another test's business
        worker.kill()
    psutil.wait_procs(alive, timeout=5)
    child.communicate(timeout=30)  # the orphans held the output pipes
    assert _holders() == []
    assert _shm() <= shm_before
