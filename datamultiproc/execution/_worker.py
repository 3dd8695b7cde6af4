"""What runs a sample, in any backend, and the worker process's main loop.

A sample's outcome is a :class:`RawOutcome`; a failure a :class:`RawFailure`. Between
processes an outcome travels as a plain tuple in the same field order (a
:data:`WireOutcome`, see :func:`shipped`), with the sample as a plain
:class:`~datamultiproc.execution._codec.SampleState` and its steps as plain
:class:`StepRecord` tuples: named tuples pickle about ten times slower. The parent
adds the worker's name.
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import signal
import socket
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from datamultiproc.core import BaseSample, Processor, recording
from datamultiproc.exceptions import ProcessingError
from datamultiproc.execution._codec import (
    WireState,
    dumps_with_classes,
    encode_shared,
    peer_known_classes,
    read_message,
    restore_sample,
    sample_state,
    write_all,
)
from datamultiproc.execution._copies import copy_sample
from datamultiproc.execution._heap import keep_freed_memory, release_if_idle
from datamultiproc.execution._isolation import own_objects
from datamultiproc.execution._lifeline import Lifeline, watch_parent
from datamultiproc.execution._moduledata import ModuleData, load_pipeline
from datamultiproc.execution._randomness import own_random_numbers
from datamultiproc.execution._reloads import ReloadError, follow, note_imports
from datamultiproc.execution._remote import RemoteReadError
from datamultiproc.execution._setupfiles import FileStamps, note_own_writes, watched_setup
from datamultiproc.execution._transport import Recycler, send_fds

__all__ = [
    "RUN_SHIFT",
    "RawFailure",
    "RawOutcome",
    "WireOutcome",
    "copy_failure",
    "lost_outcome",
    "prepare_pipeline",
    "prepare_watched",
    "raw_failure",
    "run_payload",
    "run_sample",
    "shipped",
    "worker_main",
]


class RawFailure(NamedTuple):
    """Why a sample failed, in plain strings that survive any trip between processes."""

    stage: str | None  # the failing step's stage; None if unknown (worker died, bad input)
    error_type: str  # class name of the original exception, e.g. "ValueError"
    message: str
    traceback: str  # the formatted traceback, or an explanation ("worker died (...)")


class RawOutcome(NamedTuple):
    """What running one sample gave, before the parent turns it into an ``Outcome``."""

    index: int  # type: ignore[assignment]
    sample_id: str
    sample: Any  # the processed sample (a WireState on the wire), or None if it failed
    steps: tuple[Any, ...]  # StepRecords (plain tuples on the wire)
    failure: RawFailure | None


#: A :class:`RawOutcome` as it travels: a plain tuple in the same field order.
WireOutcome = tuple[int, str, WireState | None, tuple[tuple[Any, ...], ...], RawFailure | None]
_new = tuple.__new__  # builds a named tuple in C; its own constructor is Python code

# Pipelines a worker keeps set up, so a rerun in a warm pool skips setup().
_KEPT_PIPELINES = 4
# The reply to a chunk whose large arrays this worker may not read from the parent.
_UNREADABLE = (None, None, 0.0, 0.0)


def run_sample(
    pipeline: Processor,
    index: int,
    sample: BaseSample,
    setup_error: RawFailure | None = None,
    params: dict[int, Any] | None = None,
    *,
    copy_input: bool = False,
) -> RawOutcome:
    """Run ``pipeline`` on one sample and return its outcome; never raises ``Exception``.

    ``params`` is a memo of parameter texts kept across the samples of one run
    (see :class:`~datamultiproc.core.StepRecorder`). With ``copy_input`` the pipeline
    runs on a deep copy (see ``_copies``), so the caller's sample is left as it was,
    as with worker processes.
    """
    sample_id = sample.id
    if setup_error is not None:
        return RawOutcome(index, sample_id, None, (), setup_error)
    if copy_input:
        try:
            sample = copy_sample(sample)
        except Exception as exc:
            return RawOutcome(index, sample_id, None, (), copy_failure(exc))
    with recording(params) as recorder:
        try:
            result = pipeline(sample)
        except Exception as exc:
            return RawOutcome(index, sample_id, None, tuple(recorder.records), raw_failure(exc))
    return _new(RawOutcome, (index, sample_id, result, tuple(recorder.records), None))


def prepare_pipeline(pipeline: Processor) -> RawFailure | None:
    """Call ``pipeline.setup()``; return a failure to report for every sample if it raises."""
    try:
        pipeline.setup()
    except Exception as exc:
        failure = raw_failure(exc)
        return failure._replace(stage="setup", message=f"setup() failed: {failure.message}")
    return None


def prepare_watched(pipeline: Processor) -> tuple[RawFailure | None, FileStamps]:
    """:func:`prepare_pipeline`, noting the files ``setup()`` reads (see ``_setupfiles``)."""
    return watched_setup(lambda: prepare_pipeline(pipeline))


def lost_outcome(index: int, sample_id: str, message: str) -> RawOutcome:
    """Return the outcome of a sample whose worker died or was stopped while holding it."""
    return RawOutcome(
        index, sample_id, None, (), RawFailure(None, "WorkerLostError", message, message)
    )


def copy_failure(exc: Exception) -> RawFailure:
    """Describe a sample that :func:`~datamultiproc.execution._copies.copy_sample` cannot copy."""
    message = (
        f"cannot copy the sample ({type(exc).__name__}: {exc}); in-process backends run "
        "on deep copies so the caller's samples stay unchanged: make its fields copyable"
    )
    return RawFailure(None, "NotPicklableError", message, "".join(traceback.format_exception(exc)))


def raw_failure(exc: BaseException) -> RawFailure:
    """Describe an exception as ``(stage, error_type, message, traceback)``."""
    text = "".join(traceback.format_exception(exc))
    if isinstance(exc, ProcessingError):
        original = exc.__cause__ if exc.__cause__ is not None else exc
        return RawFailure(exc.processor, type(original).__name__, str(original), text)
    return RawFailure(None, type(exc).__name__, str(exc), text)


@dataclass
class _Held:
    """One pipeline as a worker holds it."""

    pipeline: Any  # None if it could not be loaded
    setup_failure: RawFailure | None
    data: ModuleData = field(default_factory=ModuleData)  # what its code reads
    blob: bytes | None = None  # kept only to set it up again when a file setup() read changes
    read: FileStamps | None = None  # the files its setup() read
    checked: object = None  # the run whose files were last checked
    params: dict[int, Any] = field(default_factory=dict)  # parameter-text memo


class _WorkerState:
    """The pipelines one worker process holds, each set up once."""

    def __init__(self) -> None:
        self.held: OrderedDict[bytes, _Held] = OrderedDict()  # newest last
        self.applied: bytes | None = None  # whose module data the modules hold now

    def forget(self) -> None:
        """Drop every pipeline (the user's modules were reloaded)."""
        self.held.clear()
        self.applied = None

    def ready(self, key: bytes, run: object = None) -> _Held:
        """Return pipeline ``key``, ready to run samples of ``run``.

        At a run's first chunk here, set up again if a file its ``setup()`` read has
        changed since (a retrained model, an edited table; a file the pipeline writes
        while it runs, in any worker, waits for the next run); its module data in
        place (:meth:`use`). Without ``run``, the files are checked at every chunk.
        """
        held = self.held[key]
        if run is None or held.checked != run:
            if held.blob is not None and held.read is not None and held.read.changed():
                self.load(key, held.blob)
                held = self.held[key]
            if run is not None:
                held.checked = run
        self.use(key)
        return held

    def use(self, key: bytes) -> None:
        """Before running pipeline ``key``: give the user's modules the data it was sent with.

        Another pipeline (or an earlier version of this one) may have set them since.
        """
        if self.applied != key:
            self.applied = key
            held = self.held.get(key)
            (held.data if held is not None else ModuleData()).apply()

    def load(self, key: bytes, blob: bytes) -> None:
        self.held.pop(key, None)  # set up again: newest last
        try:
            pipeline, data = load_pipeline(blob)
            data.apply()  # setup() may read them too
            self.applied = key
            if data.sender != os.getpid():
                note_own_writes()  # a worker: files it writes are no edits of the user's
                own_random_numbers(data.sender)
        except Exception as exc:
            # E.g. a processor class whose module the worker cannot import.
            failure = raw_failure(exc)
            message = f"cannot load the pipeline in a worker: {failure.message}"
            self.held[key] = _Held(None, failure._replace(stage="setup", message=message))
        else:
            setup_failure, read = prepare_watched(pipeline)
            self.held[key] = _Held(pipeline, setup_failure, data, blob if read else None, read)
        while len(self.held) > _KEPT_PIPELINES:
            self.held.popitem(last=False)

    def run_chunk(
        self,
        seq: int,
        key: bytes,
        items: list[Any],
        progress: Any,
        slot: int,
    ) -> list[WireOutcome]:
        """Run ``(index, WireState)`` items; each is removed from ``items`` as it starts."""
        held = self.ready(key, seq >> RUN_SHIFT)
        pipeline, setup_error, params = held.pipeline, held.setup_failure, held.params
        outcomes = []
        strings: dict[str, str] = {}
        base = 3 * slot
        progress[base] = seq
        own_objects(items)
        for position in range(len(items)):
            # The parent reads these to know which sample a dead or stuck worker held.
            progress[base + 2] = time.monotonic()
            progress[base + 1] = position
            index, state = items[position]
            # The sample owns its parts from here: an array it replaces is freed (and
            # its memory file can take a result, see _transport.Recycler).
            items[position] = None
            sample = restore_sample(state)
            del state
            raw = run_sample(pipeline, index, sample, setup_error, params)
            del sample
            outcomes.append(shipped(raw, strings))
        progress[base + 1] = -1
        return outcomes


def shipped(raw: RawOutcome, strings: dict[str, str]) -> WireOutcome:
    """Return ``raw`` as it travels to the parent: plain tuples throughout.

    Equal stage and parameter strings (``strings`` remembers them) become one object,
    which pickle sends once.
    """
    index, sample_id, sample, steps, failure = raw
    state = None if sample is None else sample_state(sample)
    # Unpacking names every StepRecord field (and fails loudly if one is added).
    plain = tuple(
        (
            number,
            strings.setdefault(stage, stage),
            strings.setdefault(params, params),
            seconds,
            cache_hit,
            status,
            bytes_read,
            bytes_written,
            recomputed,
            reason,
            computed_seconds,
        )
        for (
            number,
            stage,
            params,
            seconds,
            cache_hit,
            status,
            bytes_read,
            bytes_written,
            recomputed,
            reason,
            computed_seconds,
        ) in steps
    )
    return (index, sample_id, state, plain, failure)


# A chunk's sequence number holds its run in the bits above these (see _multiprocess).
RUN_SHIFT = 32

_PAYLOAD_STATE = _WorkerState()
_PAYLOAD_LOCK = threading.Lock()  # a Dask worker runs tasks in several threads


def run_payload(
    key: bytes, blob: bytes, payload: bytes, code: bytes = b"", run: object = None
) -> tuple[str, bytes]:
    """Run pickled items in any worker process (an executor's, a Dask worker's).

    ``key, blob`` come from ``encode_pipeline``, ``payload`` from ``encode_samples``,
    ``code`` from :func:`~datamultiproc.execution._reloads.code_token`, ``run`` names
    the run (chunks of one run share it, see :meth:`_WorkerState.ready`); the result goes
    to ``decode_outcomes``. Each process sets a pipeline up once, and again after the
    user code changed (see :mod:`._reloads`).
    """
    with _PAYLOAD_LOCK:
        _follow_code(key, code)
        if key not in _PAYLOAD_STATE.held:
            _PAYLOAD_STATE.load(key, blob)
            note_imports()  # the modules unpickling imported, as they are now
        held = _PAYLOAD_STATE.ready(key, run)
    pipeline, setup_error, params = held.pipeline, held.setup_failure, held.params
    settings = held.data.environment.settings
    if settings is not None:
        settings.apply()  # per thread: a Dask worker runs chunks in several (see _environ)
    strings: dict[str, str] = {}
    items = pickle.loads(payload)
    own_objects(items)
    outcomes = []
    for position in range(len(items)):
        index, state = items[position]
        # The sample owns its parts from here: dropping the item keeps the collector from
        # scanning it again and again while the rest of the chunk runs.
        items[position] = None
        raw = run_sample(pipeline, index, restore_sample(state), setup_error, params)
        outcomes.append(shipped(raw, strings))
    with _PAYLOAD_LOCK:
        note_imports()  # modules the samples imported, e.g. inside process()
    # Classes the parent gave this process go back as tokens; others travel by value.
    return f"process-{os.getpid()}", dumps_with_classes(outcomes, peer_known_classes())


def _follow_code(key: bytes, code: bytes) -> None:
    """Reload changed user modules; drop pipelines set up from older code."""
    try:
        drop = follow(code)
    except ReloadError as exc:
        _PAYLOAD_STATE.forget()
        failure = raw_failure(exc)._replace(stage="setup", error_type="ReloadError")
        _PAYLOAD_STATE.held[key] = _Held(None, failure)  # every sample of the chunk says so
        return
    if drop:
        _PAYLOAD_STATE.forget()


def worker_main(
    task_conn: Any,
    result_conn: Any,
    progress: Any,
    slot: int,
    inherited_fds: Sequence[int],
    lifeline: Lifeline,
    channel_conn: Any = None,
) -> None:
    """Serve chunks until the parent says stop or goes away.

    The worker ignores SIGINT: a notebook interrupt signals the whole process
    group, and the parent decides what happens to its workers. It exits at once
    when the parent dies, even mid-sample (see :mod:`._lifeline`). Large results go
    back in the memory files their inputs came in where nothing maps those any more
    (see :class:`~._transport.Recycler`); freed memory is kept while samples keep
    coming and given back when the worker goes idle (see :mod:`._heap`).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    for fd in inherited_fds:
        # Under fork, the parent's ends of its pipes would keep them open.
        with contextlib.suppress(OSError):
            os.close(fd)
    watch_parent(lifeline)
    task_fd, result_fd = task_conn.fileno(), result_conn.fileno()
    channel = None
    if channel_conn is not None:
        channel = socket.socket(fileno=os.dup(channel_conn.fileno()))
        channel_conn.close()
    state = _WorkerState()
    recycler = Recycler()  # results go into the memory files the inputs came in
    keep_freed_memory()
    while True:
        recycler.close()
        release_if_idle(task_fd)
        try:
            message = read_message(task_fd, channel, recycler)
        except RemoteReadError:
            # The kernel will not let this worker read the parent's memory: the parent
            # sends this chunk again, and every later one, as memory files.
            write_all(result_fd, encode_shared(_UNREADABLE, share=False).pieces)
            continue
        except (EOFError, OSError):
            return
        if message[0] == "pipeline":
            state.load(message[1], message[2])
            # Long-lived objects (modules, classes, the pipeline) leave the collector's
            # view, so collections during a chunk only scan the chunk's objects.
            gc.freeze()
        elif message[0] == "chunk":
            _, seq, key, items = message
            started, cpu = time.perf_counter(), time.thread_time()
            outcomes = state.run_chunk(seq, key, items, progress, slot)
            # Wall time sizes chunks; CPU time tells the parent what a sample costs to run.
            reply = (seq, outcomes, time.perf_counter() - started, time.thread_time() - cpu)
            pieces, fds, _ = encode_shared(
                reply, peer_known_classes(), share=channel is not None, recycler=recycler
            )
            recycler.close()  # files still mapped: no descriptor outlives the reply
            if fds:
                try:
                    send_fds(channel, fds)  # type: ignore[arg-type]
                finally:
                    for fd in fds:
                        os.close(fd)
            write_all(result_fd, pieces)
            # Drop the chunk now: its arrays may be maps of the parent's shared buffers,
            # which an idle worker must not keep alive until the next message.
            del message, items, outcomes, reply, pieces
        else:
            return
