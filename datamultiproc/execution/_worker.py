"""What runs a sample, in any backend, and the worker process's main loop.

Outcomes are plain tuples, cheap to pickle:
``(index, sample_id, sample or None, steps, failure or None)`` where ``steps`` are
plain :class:`StepRecord` tuples and ``failure`` is
``(stage, error_type, message, traceback)``. The parent adds the worker's name.
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import signal
import time
import traceback
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import cloudpickle

from datamultiproc.core import BaseSample, Processor, recording
from datamultiproc.exceptions import ProcessingError
from datamultiproc.execution._codec import (
    SampleState,
    encode,
    peer_known_classes,
    read_message,
    restore_sample,
    sample_state,
    write_all,
)

__all__ = [
    "RawFailure",
    "RawOutcome",
    "lost_outcome",
    "prepare_pipeline",
    "run_payload",
    "run_sample",
    "worker_main",
]

RawFailure = tuple[str | None, str, str, str]
RawOutcome = tuple[int, str, Any, tuple[Any, ...], RawFailure | None]

# Pipelines a worker keeps set up, so a rerun in a warm pool skips setup().
_KEPT_PIPELINES = 4


def run_sample(
    pipeline: Processor, index: int, sample: BaseSample, setup_error: RawFailure | None = None
) -> RawOutcome:
    """Run ``pipeline`` on one sample and return its outcome; never raises ``Exception``."""
    sample_id = sample.id
    if setup_error is not None:
        return (index, sample_id, None, (), setup_error)
    with recording() as recorder:
        try:
            result = pipeline(sample)
        except Exception as exc:
            return (index, sample_id, None, tuple(recorder.records), raw_failure(exc))
    return (index, sample_id, result, tuple(recorder.records), None)


def prepare_pipeline(pipeline: Processor) -> RawFailure | None:
    """Call ``pipeline.setup()``; return a failure to report for every sample if it raises."""
    try:
        pipeline.setup()
    except Exception as exc:
        _, error_type, message, text = raw_failure(exc)
        return ("setup", error_type, f"setup() failed: {message}", text)
    return None


def lost_outcome(index: int, sample_id: str, message: str) -> RawOutcome:
    """Return the outcome of a sample whose worker died or was stopped while holding it."""
    return (index, sample_id, None, (), (None, "WorkerLostError", message, message))


def raw_failure(exc: BaseException) -> RawFailure:
    """Describe an exception as ``(stage, error_type, message, traceback)``."""
    text = "".join(traceback.format_exception(exc))
    if isinstance(exc, ProcessingError):
        original = exc.__cause__ if exc.__cause__ is not None else exc
        return (exc.processor, type(original).__name__, str(original), text)
    return (None, type(exc).__name__, str(exc), text)


class _WorkerState:
    """The pipelines one worker process holds, each set up once."""

    def __init__(self) -> None:
        # key -> (pipeline, setup failure); the pipeline is None if it could not be loaded.
        self.pipelines: OrderedDict[bytes, tuple[Any, RawFailure | None]] = OrderedDict()

    def load(self, key: bytes, blob: bytes) -> None:
        try:
            pipeline = pickle.loads(blob)
        except Exception as exc:
            # E.g. a processor class whose module the worker cannot import.
            _, error_type, message, text = raw_failure(exc)
            failure = (
                "setup",
                error_type,
                f"cannot load the pipeline in a worker: {message}",
                text,
            )
            self.pipelines[key] = (None, failure)
        else:
            self.pipelines[key] = (pipeline, prepare_pipeline(pipeline))
        while len(self.pipelines) > _KEPT_PIPELINES:
            self.pipelines.popitem(last=False)

    def run_chunk(
        self,
        seq: int,
        key: bytes,
        items: Sequence[tuple[int, SampleState]],
        progress: Any,
        slot: int,
    ) -> list[RawOutcome]:
        pipeline, setup_error = self.pipelines[key]
        outcomes = []
        strings: dict[str, str] = {}
        base = 3 * slot
        progress[base] = seq
        for position, (index, state) in enumerate(items):
            # The parent reads these to know which sample a dead or stuck worker held.
            progress[base + 2] = time.monotonic()
            progress[base + 1] = position
            raw = run_sample(pipeline, index, restore_sample(state), setup_error)
            outcomes.append(_shipped(raw, strings))
        progress[base + 1] = -1
        return outcomes


def _shipped(raw: RawOutcome, strings: dict[str, str]) -> RawOutcome:
    index, sample_id, result, steps, failure = raw
    state = None if result is None else sample_state(result)
    # Equal stage and parameter strings become one object, which pickle sends once.
    plain = tuple(
        (
            step[0],
            strings.setdefault(step[1], step[1]),
            strings.setdefault(step[2], step[2]),
            *step[3:],
        )
        for step in steps
    )
    return (index, sample_id, state, plain, failure)


_PAYLOAD_STATE = _WorkerState()


def run_payload(key: bytes, blob: bytes, payload: bytes) -> tuple[str, bytes]:
    """Run pickled items in any worker process (an executor's, a Dask worker's).

    ``key, blob`` come from ``encode_pipeline``, ``payload`` from ``encode_samples``;
    the result goes to ``decode_outcomes``. Each process sets a pipeline up once.
    """
    if key not in _PAYLOAD_STATE.pipelines:
        _PAYLOAD_STATE.load(key, blob)
    pipeline, setup_error = _PAYLOAD_STATE.pipelines[key]
    strings: dict[str, str] = {}
    outcomes = [
        _shipped(run_sample(pipeline, index, restore_sample(state), setup_error), strings)
        for index, state in pickle.loads(payload)
    ]
    return f"process-{os.getpid()}", cloudpickle.dumps(outcomes, protocol=5)


def worker_main(
    task_conn: Any, result_conn: Any, progress: Any, slot: int, inherited_fds: Sequence[int]
) -> None:
    """Serve chunks until the parent says stop or goes away.

    The worker ignores SIGINT: a notebook interrupt signals the whole process
    group, and the parent decides what happens to its workers.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    for fd in inherited_fds:
        # Under fork, the parent's ends of other workers' pipes would keep them open.
        with contextlib.suppress(OSError):
            os.close(fd)
    task_fd, result_fd = task_conn.fileno(), result_conn.fileno()
    state = _WorkerState()
    while True:
        try:
            message = read_message(task_fd)
        except EOFError:
            return
        if message[0] == "pipeline":
            state.load(message[1], message[2])
            # Long-lived objects (modules, classes, the pipeline) leave the collector's
            # view, so collections during a chunk only scan the chunk's objects.
            gc.freeze()
        elif message[0] == "chunk":
            _, seq, key, items = message
            started = time.perf_counter()
            outcomes = state.run_chunk(seq, key, items, progress, slot)
            reply = (seq, outcomes, time.perf_counter() - started)
            write_all(result_fd, encode(reply, peer_known_classes()))
        else:
            return
