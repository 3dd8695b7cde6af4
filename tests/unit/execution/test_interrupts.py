"""The SIGINT handler active during a run: chained, restored, main thread only (real signals)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

import pytest

from datamultiproc.execution._interrupts import stopped_on_interrupt
from datamultiproc.execution._runner import imap
from tests.helpers import AddStep, number_samples


def test_sigint_stops_the_run_then_raises_where_it_landed() -> None:
    before = signal.getsignal(signal.SIGINT)
    calls: list[str] = []
    with stopped_on_interrupt(lambda: calls.append("stopped")):
        assert signal.getsignal(signal.SIGINT) is not before
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert calls == ["stopped"]
    assert signal.getsignal(signal.SIGINT) is before


def test_the_previous_handler_is_chained_and_comes_back() -> None:
    seen: list[int] = []

    def mine(signum: int, frame: FrameType | None) -> None:
        seen.append(signum)

    previous = signal.signal(signal.SIGINT, mine)
    try:
        calls: list[str] = []
        with (
            stopped_on_interrupt(lambda: calls.append("a")),
            stopped_on_interrupt(lambda: calls.append("b")),
        ):
            signal.raise_signal(signal.SIGINT)  # no KeyboardInterrupt: the user's handler
        assert calls == ["a", "b"]
        assert seen == [signal.SIGINT]
        assert signal.getsignal(signal.SIGINT) is mine
    finally:
        signal.signal(signal.SIGINT, previous)


def test_nothing_is_installed_outside_the_main_thread_or_when_sigint_is_ignored() -> None:
    before = signal.getsignal(signal.SIGINT)
    seen = []

    def in_thread() -> None:
        with stopped_on_interrupt(lambda: None):
            seen.append(signal.getsignal(signal.SIGINT))

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join()
    assert seen == [before]
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with stopped_on_interrupt(lambda: None):
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def _consume_and_interrupt(samples: Iterator[Any], after: int) -> None:
    for count, _ in enumerate(samples, 1):
        if count == after:
            signal.raise_signal(signal.SIGINT)  # lands here, in the loop body


def test_an_interrupt_in_the_loop_body_closes_the_run() -> None:
    before = signal.getsignal(signal.SIGINT)
    samples = imap(AddStep(), number_samples(50), backend="thread", workers=2, progress=False)
    with pytest.raises(KeyboardInterrupt):
        _consume_and_interrupt(samples, 3)
    assert signal.getsignal(signal.SIGINT) is before  # the run ended and put it back
    assert len(list(samples)) < 47  # stopped: only samples that had already arrived remain
