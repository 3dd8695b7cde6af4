"""Large arrays as anonymous memory files between real processes: round trips and leaks."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import textwrap
import time
import weakref
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from datamultiproc import Compose, run
from datamultiproc.execution import MultiprocessBackend
from datamultiproc.execution import _remote as remote_reads
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
        pieces, fds, _ = encode_shared(payload)
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


def _python(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in a fresh interpreter from the repository root."""
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


READER = textwrap.dedent(
    """
    import pickle, sys
    from datamultiproc.execution._codec import read_message
    from tests.integration.execution.test_transport import _assert_same, _payload

    with open(sys.argv[1], "rb") as stream:
        received = read_message(stream.fileno())
    _assert_same(_payload(), received)
    received["float64"][0] = -1.0  # its own memory
    print("same", flush=True)
    """
)

remote_only = pytest.mark.skipif(
    not remote_reads.remote_read_available(),
    reason="the kernel does not let a process read its parent's memory here",
)


@remote_only
def test_a_message_with_remote_buffers_is_read_from_the_senders_memory(tmp_path: Path) -> None:
    payload = _payload()
    pieces, fds, held = encode_shared(payload, remote=True)
    assert fds == []
    assert len(held) == 6  # the six contiguous buffers over the threshold stay here
    stream = tmp_path / "stream"
    stream.write_bytes(b"".join(bytes(memoryview(piece).cast("B")) for piece in pieces))
    assert stream.stat().st_size < transport.SHARED_BYTES  # no array went into the stream
    done = _python(READER, str(stream))
    assert done.stdout.strip() == "same", done.stderr
    assert payload["float64"][0] == 0.0  # type: ignore[index]


class _Temporary:
    """Pickles as a large buffer made on the fly: nothing but the message holds it."""

    made: ClassVar[list[weakref.ref[np.ndarray]]] = []

    def __reduce_ex__(self, protocol: object) -> tuple[object, ...]:
        import pickle

        array = np.ones(BIG)
        self.made.append(weakref.ref(array))
        return (np.frombuffer, (pickle.PickleBuffer(array.data),))


@remote_only
def test_buffers_read_remotely_stay_alive_as_long_as_the_message_is_held() -> None:
    encoded = encode_shared({"made": _Temporary()}, remote=True)
    (buffer,) = encoded.held
    (made,) = _Temporary.made
    gc.collect()
    assert made() is not None
    address = np.frombuffer(buffer, dtype=np.uint8).__array_interface__["data"][0]
    copy = remote_reads.read_remote(os.getpid(), address, BIG * 8)
    np.testing.assert_array_equal(np.frombuffer(copy, dtype=np.float64), np.ones(BIG))
    del encoded, buffer
    gc.collect()
    assert made() is None


class _MadeWhenPickled:
    """Pickles as a new array full of ``value``, which only the message being sent holds."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __reduce_ex__(self, protocol: object) -> tuple[object, ...]:
        import pickle

        return (np.frombuffer, (pickle.PickleBuffer(np.full(BIG, float(self.value)).data),))


@remote_only
def test_arrays_made_while_pickling_reach_the_workers_intact() -> None:
    from datamultiproc.execution._multiprocess import MultiprocessBackend
    from datamultiproc.execution._pool import _IDLE

    shutdown_pools()
    samples = [AnySample(id=f"t{i}", payload={"t": _MadeWhenPickled(i)}) for i in range(40)]
    backend = MultiprocessBackend(2, "fork", inline=False)
    try:
        result = run(TouchArrays(), samples, backend=backend, chunksize=4, progress=False)
        assert result.n_ok == 40, result.failures
        for i, out in enumerate(result.samples):
            np.testing.assert_array_equal(out.payload["t"], np.full(BIG, float(i)))  # type: ignore[index]
        assert [pool.remote_read for pool in _IDLE.values()] == [True]  # read, not refused
    finally:
        shutdown_pools()


def test_pages_shared_with_a_forked_child_are_not_exclusive() -> None:
    import multiprocess

    before = np.arange(BIG, dtype=np.float64)
    assert remote_reads.exclusive(before)
    context = multiprocess.get_context("fork")
    release = context.Event()
    child = context.Process(target=release.wait, args=(30,))
    child.start()
    try:
        after = np.arange(BIG, dtype=np.float64)
        assert not remote_reads.exclusive(before)  # the child holds the same pages
        assert remote_reads.exclusive(after)
        before[: BIG // 2] += 1  # written since: this process's own copies now
        assert not remote_reads.exclusive(before)  # the rest is still shared
        before[BIG // 2 :] += 1
        assert remote_reads.exclusive(before)
    finally:
        release.set()
        child.join(30)


EXIT_SCRIPT = textwrap.dedent(
    """
    import multiprocessing  # changes the order in which modules are torn down at exit

    from datamultiproc import run
    from tests.helpers import AnySample, MakeArray

    result = run(MakeArray(size=70_000), [AnySample(id=f"m{i}") for i in range(8)], workers=2,
                 progress=False)
    print(result.n_ok, flush=True)
    """
)


def test_results_alive_at_interpreter_exit_go_quietly() -> None:
    done = _python(EXIT_SCRIPT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "8"
    assert "Exception ignored" not in done.stderr, done.stderr


def test_reading_a_process_that_is_gone_raises_process_lookup_error() -> None:
    if not remote_reads.remote_read_available():
        pytest.skip("no remote reads here")
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    with pytest.raises(ProcessLookupError):
        remote_reads.read_remote(child.pid, 4096, 16)


@remote_only
def test_a_worker_refused_by_the_kernel_gets_its_arrays_as_files(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from datamultiproc.execution._multiprocess import MultiprocessBackend
    from datamultiproc.execution._pool import _IDLE

    def refused(*args: object) -> object:
        raise remote_reads.RemoteReadError(1, "Operation not permitted")

    shutdown_pools()
    monkeypatch.setattr(remote_reads, "read_remote", refused)  # forked workers inherit the refusal
    backend = MultiprocessBackend(2, "fork", inline=False)
    run(TouchArrays(), [AnySample(id="w")], backend=backend, progress=False)  # workers first:
    # arrays made before the fork would be shared with them, and travel as files anyway.
    samples = [AnySample(id=f"r{i}", payload={"big": np.arange(BIG) + i}) for i in range(10)]
    try:
        result = run(TouchArrays(), samples, backend=backend, chunksize=2, progress=False)
        assert result.n_ok == 10, result.failures
        for i, out in enumerate(result.samples):
            np.testing.assert_array_equal(out.payload["big"], np.arange(BIG) + i)  # type: ignore[index]
        assert [pool.remote_read for pool in _IDLE.values()] == [False]
        again = run(TouchArrays(), samples, backend=backend, progress=False)  # same warm pool
        assert again.n_ok == 10, again.failures
    finally:
        shutdown_pools()


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
    backend = MultiprocessBackend(2, inline=False)  # results made in a worker, mapped here
    first = run(MakeArray(size=BIG), [AnySample(id="m1")], backend=backend, progress=False)
    made = first.samples[0].payload["made"]  # type: ignore[index]
    assert made.flags.writeable
    made[:3] = -1.0
    second = run(MakeArray(size=BIG), [AnySample(id="m1")], backend=backend, progress=False)
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
    backend = MultiprocessBackend(2, inline=False)  # m5 must not run in the parent
    result = run(pipeline, samples, backend=backend, progress=False, on_error="skip")
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
