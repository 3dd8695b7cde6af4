"""Ctrl-C anywhere during a run, including in the body of a loop over ``imap()``.

Inside ``next()`` an interrupt raises ``KeyboardInterrupt`` in the runner's own code,
which stops the workers. In the body of a loop over ``imap()`` it raises in the
user's code instead, while the run's generator waits, suspended, with its workers
still busy. So while a run is active in the main thread, a SIGINT handler first
stops every active run (each run registers a callback), then calls the handler it
replaced, so ``KeyboardInterrupt`` (or whatever that handler does) still happens
where the signal landed. The previous handler comes back when the last active run
ends, is closed or is garbage collected.

Nothing is installed outside the main thread (Python runs signal handlers only
there), or when SIGINT is ignored or handled outside Python.
"""

from __future__ import annotations

import contextlib
import itertools
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

__all__ = ["stopped_on_interrupt"]

_callbacks: dict[int, Callable[[], None]] = {}  # active runs, by registration number
_numbers = itertools.count()
_previous: Any = None  # the handler ours replaced, while ours is installed


@contextlib.contextmanager
def stopped_on_interrupt(stop: Callable[[], None]) -> Iterator[None]:
    """Call ``stop()`` on SIGINT while the block is active, then the previous handler.

    ``stop`` runs inside the signal handler, in the main thread, between two
    bytecodes of whatever code runs then; it must not raise.

    Examples
    --------
    >>> calls = []
    >>> with stopped_on_interrupt(lambda: calls.append("stopped")):
    ...     pass
    >>> calls
    []
    """
    number = next(_numbers)
    installed = _install()
    if installed:
        _callbacks[number] = stop
    try:
        yield
    finally:
        if installed:
            _callbacks.pop(number, None)
            if not _callbacks:
                _uninstall()


def _install() -> bool:
    global _previous
    if threading.current_thread() is not threading.main_thread():
        return False
    current = signal.getsignal(signal.SIGINT)
    if current is _handle:
        return True
    if not callable(current):  # SIG_IGN, SIG_DFL, or a handler set from C
        return False
    _previous = current
    signal.signal(signal.SIGINT, _handle)
    return True


def _uninstall() -> None:
    global _previous
    # Only undo our own handler: one the user set meanwhile stays.
    if signal.getsignal(signal.SIGINT) is _handle:
        signal.signal(signal.SIGINT, _previous)
    _previous = None


def _handle(signum: int, frame: FrameType | None) -> None:
    previous = _previous
    for stop in list(_callbacks.values()):
        with contextlib.suppress(Exception):
            stop()
    if callable(previous):
        previous(signum, frame)
    else:
        raise KeyboardInterrupt
