"""No worker outlives its parent: a lifeline pipe, and on Linux a parent-death signal.

The parent creates one pipe per interpreter and never writes to it. It keeps the
only writing end (closed in forked workers, never passed to spawned ones) and gives
each worker the reading end. A daemon thread in the worker blocks reading it; when
the parent dies, by any means (``kill -9``, the OOM killer), the kernel closes the
writing end, the read returns end-of-file and the thread ends the worker at once,
even in the middle of a long sample: the thread waits with the GIL released, and
the main thread gives the GIL up every few milliseconds of Python code, or for good
in ``time.sleep`` and large numpy operations.

C code that holds the GIL for long would delay that thread, so on Linux the worker
also asks the kernel for ``SIGKILL`` when its parent exits (``PR_SET_PDEATHSIG``).
That signal follows the *thread* that started the worker, so it is only set when the
parent started the worker from its main thread (under forkserver, the fork server's
main thread, which ends when the parent does).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
from typing import Any, NamedTuple

__all__ = ["Lifeline", "lifeline_for_worker", "parent_only_fds", "watch_parent"]

_PR_SET_PDEATHSIG = 1
_EXIT_CODE = 70  # the parent is gone: nobody reads it, but it is recognisable in a trace

# (pid, reading end, writing end) of this interpreter's lifeline pipe.
_pipe: tuple[int, Any, Any] | None = None


class Lifeline(NamedTuple):
    """What a worker needs to follow its parent: the pipe's reading end, and a flag."""

    reader: Any  # a multiprocess Connection; picklable while a worker is being started
    death_signal: bool  # also set PR_SET_PDEATHSIG (Linux)


def lifeline_for_worker(context: Any, start_method: str) -> Lifeline:
    """Return the lifeline to pass to a worker about to be started from this process."""
    reader, _ = _own_pipe(context)
    from_main_thread = threading.current_thread() is threading.main_thread()
    return Lifeline(reader, start_method == "forkserver" or from_main_thread)


def parent_only_fds() -> list[int]:
    """Descriptors a forked worker must close: the lifeline's writing end."""
    if _pipe is None or _pipe[0] != os.getpid():
        return []
    return [_pipe[2].fileno()]


def watch_parent(lifeline: Lifeline) -> None:
    """In a worker: exit at once when the parent dies (see the module docstring)."""
    if lifeline.death_signal:
        _set_parent_death_signal()
    thread = threading.Thread(
        target=_exit_at_eof,
        args=(lifeline.reader.fileno(),),
        name="datamultiproc-lifeline",
        daemon=True,
    )
    thread.start()


def _own_pipe(context: Any) -> tuple[Any, Any]:
    global _pipe
    if _pipe is None or _pipe[0] != os.getpid():
        # A forked child (a worker running its own pool) makes its own pipe; the
        # parent's ends it inherited are not its to use.
        reader, writer = context.Pipe(duplex=False)
        _pipe = (os.getpid(), reader, writer)
    return _pipe[1], _pipe[2]


def _exit_at_eof(fd: int) -> None:
    while True:
        try:
            if not os.read(fd, 1):
                break
        except OSError:
            break
    os._exit(_EXIT_CODE)


def _set_parent_death_signal() -> None:
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
