"""Worker processes: start, replace, stop; a warm pool per start method and size.

Each worker has two one-way pipes (tasks in, results out) and three slots in a
shared array where it notes the chunk and position it is working on and when that
sample started. The parent writes to task pipes without blocking (so parent and
worker can never wait on each other), watches each process's sentinel to see it
die, and reads the shared slots to tell which sample a dead or stuck worker held.
Where large buffers can be shared (Linux), each worker also has a Unix socket on
which both sides pass the descriptors of large arrays (see ``_transport``).

Pools stay warm between runs in the same interpreter, keyed by start method and
size; an interrupted run discards its pool, and every pool is shut down at exit.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import signal
import socket
import sys
import threading
from collections import deque
from collections.abc import Iterator
from typing import Any, TypeVar

import multiprocess

from datamultiproc.execution import _remote as remote_reads
from datamultiproc.execution import _transport as transport
from datamultiproc.execution._codec import encode, write_all
from datamultiproc.execution._codestate import CodeState, code_state
from datamultiproc.execution._lifeline import lifeline_for_worker, parent_only_fds
from datamultiproc.execution._policy import InlineFigures
from datamultiproc.execution._worker import worker_main

__all__ = ["WorkerPool", "WorkerProcess", "acquire_pool", "release_pool", "shutdown_pools"]

_PIPE_BYTES = 1 << 20  # bigger pipes mean fewer wake-ups per large array
#: ``fcntl.F_SETPIPE_SZ`` (Linux, Python >= 3.10); ``None`` where pipes cannot be resized.
_F_SETPIPE_SZ: int | None = getattr(fcntl, "F_SETPIPE_SZ", None)
_JOIN_SECONDS = 1.0
_RECALLED_PIPELINES = 8
_V = TypeVar("_V")


class WorkerProcess:
    """The parent's handle on one worker process."""

    def __init__(
        self,
        slot: int,
        process: Any,
        task_conn: Any,
        result_conn: Any,
        channel: socket.socket | None = None,
    ) -> None:
        self.slot = slot
        self.channel = channel  # descriptors of shared buffers, both ways
        self.process = process
        self.connections = (task_conn, result_conn)
        self.task_fd: int = task_conn.fileno()
        self.result_fd: int = result_conn.fileno()
        self.name = f"process-{process.pid}"
        self.outbox: deque[memoryview] = deque()  # bytes not yet written to the task pipe
        self.in_flight: deque[Any] = deque()  # chunks sent, oldest first
        self.pipelines: set[bytes] = set()  # pipeline keys this worker has loaded
        self.classes: set[str] = set()  # tokens of notebook classes this worker has received
        self.runs = 0  # runs it finished serving (0: started during the current run)
        self.draining = False  # sent its last chunk: it exits once it has sent the results

    def send(self, pieces: list[Any]) -> None:
        """Queue frame pieces; :meth:`flush` writes them as the pipe accepts them."""
        self.outbox.extend(memoryview(piece).cast("B") for piece in pieces if len(piece))
        self.flush()

    def flush(self) -> None:
        """Write as much of the outbox as the pipe takes now; ``BrokenPipeError`` if dead."""
        while self.outbox:
            try:
                written = os.write(self.task_fd, self.outbox[0])
            except BlockingIOError:
                return
            if written == len(self.outbox[0]):
                self.outbox.popleft()
            else:
                self.outbox[0] = self.outbox[0][written:]

    def drain(self) -> None:
        """Close the task pipe: the worker runs the chunks it holds, sends them back, exits."""
        self.draining = True
        with contextlib.suppress(OSError):
            self.connections[0].close()
        self.task_fd = -1

    def kill(self) -> None:
        """Kill the process now and release its pipes."""
        with contextlib.suppress(OSError, ValueError):
            self.process.kill()
        self.close()

    def close(self) -> None:
        """Reap the process (briefly) and close the parent's pipe ends."""
        with contextlib.suppress(Exception):
            self.process.join(_JOIN_SECONDS)
        for connection in self.connections:
            with contextlib.suppress(OSError):
                connection.close()
        if self.channel is not None:
            self.channel.close()  # frees descriptors still in flight
        self.task_fd = self.result_fd = -1


class WorkerPool:
    """A fixed number of worker slots, each holding a live worker or ``None``."""

    def __init__(self, start_method: str, size: int) -> None:
        self.start_method = start_method
        self.size = size
        self.context = multiprocess.get_context(start_method)
        self.progress = self.context.RawArray("d", 3 * size)
        self.workers: list[WorkerProcess | None] = [None] * size
        self.started = 0
        self.code: CodeState = ()  # the user modules' state its workers started from
        self.retired: list[WorkerProcess] = []  # told to stop, not yet reaped
        # pipeline key -> the inline figures of its last run, if the parent took it over
        # and the pool kept no worker (see InlinePolicy.recall).
        self.recalled: dict[bytes, InlineFigures] = {}
        # pipeline key -> time.monotonic() before which the parent does not probe again:
        # its last run lost a probe (see InlinePolicy.quiet_until).
        self.quiet: dict[bytes, float] = {}
        # Whether workers read large arrays straight from this process's memory; off
        # for good once one of them was refused (see _remote).
        self.remote_read = remote_reads.remote_read_available()

    def remember(self, key: bytes, figures: InlineFigures | None, quiet_until: float = 0.0) -> None:
        """Keep (or with ``None`` and 0 drop) what a run of pipeline ``key`` left for the next one.

        ``figures`` if the parent took the run over; ``quiet_until`` if it lost a probe
        (see :class:`InlinePolicy`).
        """
        _keep(self.recalled, key, figures)
        _keep(self.quiet, key, quiet_until or None)

    def retire(self, worker: WorkerProcess) -> None:
        """Free the slot of a worker that owes no results; :meth:`reap` waits for it to exit.

        Its pipes close now: at the end of its task pipe the worker exits.
        """
        self.workers[worker.slot] = None
        for connection in worker.connections:
            with contextlib.suppress(OSError):
                connection.close()
        if worker.channel is not None:
            worker.channel.close()
        worker.task_fd = worker.result_fd = -1
        self.retired.append(worker)

    def reap(self) -> None:
        """Wait for the retired workers to exit (killing any that does not)."""
        while self.retired:
            worker = self.retired.pop()
            worker.close()  # it exited long ago, unless it was retired just now
            if worker.process.exitcode is None:
                worker.kill()

    def live(self) -> list[WorkerProcess]:
        """Workers currently running."""
        return [worker for worker in self.workers if worker is not None]

    def fill(self) -> None:
        """Start a worker in every empty slot."""
        for slot, worker in enumerate(self.workers):
            if worker is None:
                self._start_in(slot)

    def replace(self, worker: WorkerProcess) -> None:
        """Kill ``worker`` and start a fresh one in its slot."""
        worker.kill()
        self._start_in(worker.slot)

    def _start_in(self, slot: int) -> None:
        # An interrupt arriving meanwhile waits until the worker has its slot, where
        # stopping the pool finds it: raised any earlier, it would leave it behind.
        with _deferred_interrupt(), _blocking_sigint():
            self.workers[slot] = self._start(slot)

    def read_progress(self, worker: WorkerProcess) -> tuple[int, int, float]:
        """Return the chunk, position (-1 when idle) and start time noted by ``worker``."""
        base = 3 * worker.slot
        return int(self.progress[base]), int(self.progress[base + 1]), self.progress[base + 2]

    def shutdown(self, *, kill: bool = False) -> None:
        """Stop every worker: politely when idle, by force when ``kill`` or busy."""
        self.reap()
        for worker in self.live():
            if kill or worker.in_flight or worker.outbox or worker.draining:
                worker.kill()
                continue
            with contextlib.suppress(OSError):
                os.set_blocking(worker.task_fd, True)
                write_all(worker.task_fd, encode(("stop",)))
        for worker in self.live():
            worker.close()
            if worker.process.exitcode is None:
                worker.kill()
        self.workers = [None] * self.size

    def _start(self, slot: int) -> WorkerProcess:
        task_r, task_w = self.context.Pipe(duplex=False)
        result_r, result_w = self.context.Pipe(duplex=False)
        lifeline = lifeline_for_worker(self.context, self.start_method)
        channel, child_channel = (
            self.context.Pipe(duplex=True) if transport.available() else (None, None)
        )
        inherited = []
        if self.start_method == "fork":
            # A forked worker holding the parent's ends of any pipe (its own included)
            # would never see them close: it would outlive its parent.
            own = [task_w.fileno(), result_r.fileno()]
            if channel is not None:
                own.append(channel.fileno())
            inherited = [*_parent_fds(), *own, *parent_only_fds()]
        process = self.context.Process(
            target=worker_main,
            args=(task_r, result_w, self.progress, slot, inherited, lifeline, child_channel),
            name=f"datamultiproc-worker-{slot}",
            daemon=True,
        )
        self.progress[3 * slot + 1] = -1
        with _hidden_main():
            process.start()  # SIGINT is blocked (see _start_in): the worker inherits the mask
        task_r.close()
        result_w.close()
        if child_channel is not None:
            child_channel.close()
        worker = WorkerProcess(slot, process, task_w, result_r, as_socket(channel))
        os.set_blocking(worker.task_fd, False)
        _enlarge_pipes(worker.task_fd, worker.result_fd)
        self.started += 1
        return worker


def _enlarge_pipes(*fds: int) -> None:
    """Grow the pipes to ``_PIPE_BYTES`` where the platform allows; keep them as they are elsewhere."""
    if _F_SETPIPE_SZ is None:
        return
    for fd in fds:
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, _F_SETPIPE_SZ, _PIPE_BYTES)


_IDLE: dict[tuple[str, int], WorkerPool] = {}  # warm pools waiting for the next run
_ALL: set[WorkerPool] = set()  # every pool with workers, in use or idle


def acquire_pool(start_method: str, size: int) -> WorkerPool:
    """Take the warm pool for this start method and size, or create one.

    A pool serves one run at a time; a second concurrent run gets a pool of its own.
    A warm pool whose workers imported user modules that have changed since (edited
    on disk, reloaded) is shut down and replaced, so workers never run stale code.
    """
    code = code_state()
    pool = _IDLE.pop((start_method, size), None)
    if pool is not None and pool.code != code:
        _ALL.discard(pool)
        pool.shutdown()
        pool = None
    if pool is None:
        pool = WorkerPool(start_method, size)
        _ALL.add(pool)
    pool.code = code
    return pool


def release_pool(pool: WorkerPool, *, keep: bool) -> None:
    """Return a pool after a run: keep it warm, or shut its workers down."""
    key = (pool.start_method, pool.size)
    pool.reap()
    for worker in pool.live():
        worker.runs += 1
    if keep and key not in _IDLE:
        _IDLE[key] = pool
        return
    _ALL.discard(pool)
    pool.shutdown(kill=not keep)


def shutdown_pools() -> None:
    """Stop every pool's workers; registered to run at interpreter exit."""
    _IDLE.clear()
    while _ALL:
        _ALL.pop().shutdown()


atexit.register(shutdown_pools)


def _parent_fds() -> list[int]:
    return [
        fd
        for pool in _ALL
        for worker in pool.live()
        for fd in (
            worker.task_fd,
            worker.result_fd,
            -1 if worker.channel is None else worker.channel.fileno(),
        )
        if fd >= 0
    ]


def as_socket(connection: Any) -> socket.socket | None:
    """Turn a duplex ``multiprocess`` connection into a socket object (closing the connection)."""
    if connection is None:
        return None
    fd = os.dup(connection.fileno())
    connection.close()
    return socket.socket(fileno=fd)


@contextlib.contextmanager
def _hidden_main() -> Iterator[None]:
    """Hide ``__main__``'s file and spec while a worker starts.

    spawn and forkserver would otherwise re-run the main module in each worker
    (fatal for ``python -`` whose file is ``'<stdin>'``, and a surprise for scripts
    without a ``__name__`` guard). Workers need nothing from it: cloudpickle ships
    classes defined there by value.
    """
    main = sys.modules["__main__"]
    names: tuple[str, ...] = ("__file__", "__spec__")
    saved = {name: main.__dict__[name] for name in names if name in main.__dict__}
    main.__dict__.pop("__file__", None)
    main.__dict__["__spec__"] = None
    try:
        yield
    finally:
        main.__dict__.pop("__spec__", None)
        main.__dict__.update(saved)


@contextlib.contextmanager
def _deferred_interrupt() -> Iterator[None]:
    """Hold a Ctrl-C that arrives in the block back until the block is done.

    Blocking SIGINT (see :func:`_blocking_sigint`) only holds it back in this thread:
    the kernel hands a signal sent to the process to any thread that does not block
    it (a notebook has several), and Python then raises ``KeyboardInterrupt`` in the
    main thread all the same. So the main thread's handler is swapped for one that
    notes the signal, and the signal is raised again, to the old handler, on exit.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread ever gets KeyboardInterrupt
        return
    noted: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: noted.append(signum))
    try:
        yield
    finally:
        # None: a handler installed outside Python; the default is the closest we can put back.
        signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)
        if noted:
            signal.raise_signal(signal.SIGINT)


@contextlib.contextmanager
def _blocking_sigint() -> Iterator[None]:
    """Start workers with SIGINT blocked, so an interrupt during start-up cannot kill them.

    Children inherit the mask; the worker ignores SIGINT, then unblocks it. In the
    parent, :func:`_deferred_interrupt` holds a Ctrl-C back until the new worker is in
    its slot.
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _keep(kept: dict[bytes, _V], key: bytes, value: _V | None) -> None:
    """Set (or with ``None`` drop) ``kept[key]``, the newest last, at most a few pipelines."""
    kept.pop(key, None)
    if value is not None:
        kept[key] = value
        while len(kept) > _RECALLED_PIPELINES:
            del kept[next(iter(kept))]
