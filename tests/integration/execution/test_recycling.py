"""Worker memory on large arrays: results written into the memory files their inputs came
in (only where nothing maps them), freed memory kept while busy and given back when idle."""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Iterator

import numpy as np
import pytest

from datamultiproc import run
from datamultiproc.execution import _remote as remote_reads
from datamultiproc.execution import _transport as transport
from datamultiproc.execution._heap import keep_freed_memory, release_if_idle
from datamultiproc.execution._multiprocess import MultiprocessBackend
from datamultiproc.execution._pool import _IDLE, shutdown_pools
from tests.helpers import AddStep, ArraySample, Churn, NumberSample, ReuseInput, memfds

pytestmark = pytest.mark.skipif(
    not transport.available(), reason="needs memfd and descriptor passing"
)
BIG = transport.SHARED_BYTES // 8 + 1000  # float64 elements: just over the threshold


def _memfd_inode(array: np.ndarray) -> int | None:
    """The inode of the memory file ``array`` is mapped from, or None for private memory."""
    address = array.__array_interface__["data"][0]
    with open("/proc/self/maps") as maps:
        for line in maps:
            parts = line.split()
            start, end = (int(x, 16) for x in parts[0].split("-"))
            if start <= address < end:
                return int(parts[4]) if "memfd:datamultiproc" in line else None
    return None


def _samples(count: int) -> list[ArraySample]:
    return [
        ArraySample(id=f"r{i}", array=np.arange(BIG, dtype=np.float64) + i) for i in range(count)
    ]


# -- in one process: the Recycler itself ------------------------------------------------


def test_a_file_no_array_maps_takes_the_result_in_place() -> None:
    recycler = transport.Recycler()
    incoming = transport.share(np.ones(BIG))
    inode = os.fstat(incoming).st_ino
    buffer = recycler.map(incoming, BIG * 8)
    del buffer
    result = np.arange(BIG - 10, dtype=np.float64)
    fd = recycler.share(result)
    try:
        assert os.fstat(fd).st_ino == inode
        assert os.fstat(fd).st_size == result.nbytes  # cut to the result's size
        np.testing.assert_array_equal(
            np.frombuffer(transport.map_shared(os.dup(fd), result.nbytes), dtype=np.float64),
            result,
        )
    finally:
        os.close(fd)
        recycler.close()
    assert recycler.held == []


@pytest.mark.parametrize("hold", ["array", "view", "buffer"])
def test_a_file_still_mapped_is_never_written(hold: str) -> None:
    recycler = transport.Recycler()
    incoming = transport.share(np.arange(BIG, dtype=np.float64))
    inode = os.fstat(incoming).st_ino
    buffer = recycler.map(incoming, BIG * 8)
    array = np.frombuffer(buffer, dtype=np.float64)
    kept = {"array": array, "view": array[100:200], "buffer": buffer}[hold]
    before = bytes(memoryview(kept).cast("B"))
    del buffer, array
    fd = recycler.share(np.zeros(BIG))
    try:
        assert os.fstat(fd).st_ino != inode  # a fresh file
        assert bytes(memoryview(kept).cast("B")) == before
    finally:
        os.close(fd)
        recycler.close()
    assert memfds() == 1  # the kept map only: every descriptor is closed
    del kept
    gc.collect()
    assert memfds() == 0


@pytest.mark.slow
def test_a_file_mapped_when_the_process_forked_is_never_written() -> None:
    recycler = transport.Recycler()
    incoming = transport.share(np.arange(BIG, dtype=np.float64))
    inode = os.fstat(incoming).st_ino
    array = np.frombuffer(recycler.map(incoming, BIG * 8), dtype=np.float64)
    child = os.fork()
    if child == 0:  # the child reads its inherited map after the parent wrote its result
        time.sleep(0.5)
        os._exit(0 if array[7] == 7.0 and array[-1] == BIG - 1 else 1)
    del array
    fd = recycler.share(np.zeros(BIG))
    try:
        assert os.fstat(fd).st_ino != inode
    finally:
        os.close(fd)
        recycler.close()
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_keep_freed_memory_is_set_where_glibc_is() -> None:
    import platform

    assert keep_freed_memory() == (platform.libc_ver()[0] == "glibc")


def test_idleness_is_checked_on_descriptors_above_1023() -> None:
    import resource

    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] <= 1500:
        pytest.skip("needs more than 1,500 descriptors")
    read_end, write_end = os.pipe()
    high = os.dup2(read_end, 1500)  # a forked worker inherits the parent's numbering
    try:
        assert release_if_idle(high, wait=0) == keep_freed_memory()
        os.write(write_end, b"x")
        assert not release_if_idle(high, wait=0)
    finally:
        for fd in (read_end, write_end, high):
            os.close(fd)


# -- real workers -----------------------------------------------------------------------


@pytest.fixture(params=["files", "remote"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """How inputs reach the workers: as memory files, or read from the parent's memory."""
    if request.param == "remote" and not remote_reads.remote_read_available():
        pytest.skip("the kernel does not let a worker read its parent's memory here")
    if request.param == "files":
        monkeypatch.setattr(remote_reads, "remote_read_available", lambda: False)
    shutdown_pools()  # pools decide when they start
    yield request.param
    shutdown_pools()


@pytest.fixture
def files_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(remote_reads, "remote_read_available", lambda: False)
    shutdown_pools()
    yield
    shutdown_pools()


@pytest.mark.slow
@pytest.mark.parametrize("start_method", ["fork", "spawn", "forkserver"])
@pytest.mark.usefixtures("files_only")
def test_results_come_back_in_the_input_files(start_method: str) -> None:
    samples = _samples(6)
    backend = MultiprocessBackend(2, start_method, inline=False)  # every sample in a worker
    result = run(ReuseInput(how="new"), samples, backend=backend, chunksize=1, progress=False)
    assert result.n_ok == 6, result.failures
    for i, out in enumerate(result.samples):
        np.testing.assert_array_equal(out.array, (np.arange(BIG, dtype=np.float64) + i) * 2)
        assert out.data > 0  # the worker held exactly one memory file: the input's
        assert _memfd_inode(out.array) == out.data  # and the result came back in it
        np.testing.assert_array_equal(samples[i].array, np.arange(BIG) + i)  # caller's: intact


@pytest.mark.slow
@pytest.mark.parametrize("start_method", ["fork", "spawn", "forkserver"])
def test_inputs_read_from_the_parent_come_in_no_file(start_method: str) -> None:
    if not remote_reads.remote_read_available():
        pytest.skip("the kernel does not let a worker read its parent's memory here")
    shutdown_pools()
    backend = MultiprocessBackend(2, start_method, inline=False)
    run(AddStep(), [NumberSample(id="w", data=0)], backend=backend, progress=False)
    samples = _samples(6)  # made after the fork: this process's own pages
    result = run(ReuseInput(how="new"), samples, backend=backend, chunksize=1, progress=False)
    assert result.n_ok == 6, result.failures
    for i, out in enumerate(result.samples):
        np.testing.assert_array_equal(out.array, (np.arange(BIG, dtype=np.float64) + i) * 2)
        assert out.data == 0  # the worker held no memory file while it ran the sample
        assert _memfd_inode(out.array) is not None  # the result still came back in one
        np.testing.assert_array_equal(samples[i].array, np.arange(BIG) + i)  # caller's: intact
    shutdown_pools()


@pytest.mark.slow
def test_inputs_shared_with_forked_workers_travel_as_files_and_stay_shared() -> None:
    if not remote_reads.remote_read_available():
        pytest.skip("the kernel does not let a worker read its parent's memory here")
    shutdown_pools()
    older = _samples(4)  # the workers will inherit these pages
    backend = MultiprocessBackend(2, "fork", inline=False)
    run(AddStep(), [NumberSample(id="w", data=0)], backend=backend, progress=False)
    assert not any(remote_reads.exclusive(s.array) for s in older)
    newer = [ArraySample(id=f"n{i}", array=np.arange(BIG, dtype=np.float64) + i) for i in range(4)]
    assert all(remote_reads.exclusive(s.array) for s in newer)
    result = run(ReuseInput(how="new"), older + newer, backend=backend, chunksize=1, progress=False)
    assert result.n_ok == 8, result.failures
    by_id = {out.id: out for out in result.samples}
    for sample in older + newer:
        out = by_id[sample.id]
        np.testing.assert_array_equal(out.array, sample.array * 2)
        if sample in newer:
            assert out.data == 0  # read from the parent's memory
        else:
            assert out.data > 0  # came as a memory file
    # Reading the older ones remotely would have made the kernel copy their pages for the
    # parent (the workers keeping the originals): they are still shared.
    assert not any(remote_reads.exclusive(s.array) for s in older)
    shutdown_pools()


@pytest.mark.slow
@pytest.mark.parametrize("how", ["same", "view", "keep", "keep_view"])
@pytest.mark.usefixtures("mode")
def test_inputs_a_processor_holds_on_to_are_never_overwritten(how: str) -> None:
    samples = _samples(16)
    backend = MultiprocessBackend(2, inline=False)
    result = run(ReuseInput(how=how), samples, backend=backend, chunksize=1, progress=False)
    # A kept input that changed makes every later sample in its worker fail.
    assert result.n_ok == 16, result.failures[:1]
    for i, out in enumerate(result.samples):
        expected = (np.arange(BIG, dtype=np.float64) + i) * 2
        np.testing.assert_array_equal(out.array, expected[1:] if how == "view" else expected)
        if how in ("same", "view"):  # the result is the input's map: it came in a new file
            assert _memfd_inode(out.array) != out.data
    shutdown_pools()


@pytest.mark.slow
@pytest.mark.usefixtures("mode")
def test_recycling_leaves_no_descriptor_or_map_behind() -> None:
    gc.collect()
    assert memfds() == 0
    for how in ("new", "same", "keep"):
        backend = MultiprocessBackend(2, inline=False)
        result = run(ReuseInput(how=how), _samples(12), backend=backend, progress=False)
        assert result.n_ok == 12, result.failures[:1]
        del result
    workers = [w.process.pid for pool in _IDLE.values() for w in pool.live()]
    assert workers
    # Kept inputs ("keep") are the processor's own maps; no descriptor stays open.
    for pid in workers:
        with os.scandir(f"/proc/{pid}/fd") as entries:
            links = [os.readlink(e.path) for e in entries if not e.name.startswith(".")]
        assert not [link for link in links if link.startswith("/memfd:")]
    shutdown_pools()
    gc.collect()
    assert memfds() == 0


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    msg = "no VmRSS"
    raise AssertionError(msg)


@pytest.mark.slow
def test_an_idle_worker_gives_back_the_memory_it_kept_while_busy() -> None:
    shutdown_pools()
    backend = MultiprocessBackend(1, inline=False)
    run(AddStep(), [NumberSample(id="w", data=0)], backend=backend, progress=False)
    (pid,) = [w.process.pid for pool in _IDLE.values() for w in pool.live()]
    before = _rss_mib(pid)
    samples = [NumberSample(id=f"c{i}", data=i) for i in range(4)]
    result = run(Churn(mib=48), samples, backend=backend, progress=False)
    assert result.n_ok == 4, result.failures
    deadline = time.monotonic() + 5
    while _rss_mib(pid) > before + 24 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _rss_mib(pid) < before + 24  # 48 MiB were freed in the worker: not kept
    shutdown_pools()


@pytest.mark.slow
def test_an_idle_worker_gives_back_the_memory_its_remote_inputs_took() -> None:
    if not remote_reads.remote_read_available():
        pytest.skip("the kernel does not let a worker read its parent's memory here")
    shutdown_pools()
    backend = MultiprocessBackend(1, inline=False)
    run(AddStep(), [NumberSample(id="w", data=0)], backend=backend, progress=False)
    (pid,) = [w.process.pid for pool in _IDLE.values() for w in pool.live()]
    before = _rss_mib(pid)
    big = 6 << 20  # float64 elements: 48 MiB per input
    samples = [ArraySample(id=f"l{i}", array=np.full(big, float(i))) for i in range(3)]
    result = run(ReuseInput(how="new"), samples, backend=backend, progress=False)
    assert result.n_ok == 3, result.failures
    assert [out.data for out in result.samples] == [0, 0, 0]  # read from this process
    del result, samples
    deadline = time.monotonic() + 5
    while _rss_mib(pid) > before + 24 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _rss_mib(pid) < before + 24  # 48 MiB inputs were read into it: not kept
    shutdown_pools()
