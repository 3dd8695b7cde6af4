"""Serialization between the parent and worker processes.

Objects travel as cloudpickle protocol 5 streams, so classes defined in a notebook's
``__main__`` reach workers by value under every start method. Large buffers (numpy
arrays) travel out of band: they are written straight from their memory and read
straight into fresh writable buffers, never copied into the pickle stream. Between
the parent and its workers, buffers of :data:`~._transport.SHARED_BYTES` or more
skip the pipe: they travel as anonymous memory files (see ``_transport``).

Samples are flattened to ``(class, __dict__, fields_set, extra, private)`` before
pickling: this skips pydantic's Python-level ``__getstate__``/``__setstate__``, which
dominate the cost of sending many small samples.

Classes that cannot be imported by name (defined in a notebook's ``__main__``) would
travel by value in every message, and a pydantic class costs about a millisecond
to pickle and to rebuild. Instead each such class gets a token: the first message
to a peer carries the class by value and registers it under the token there; later
messages carry only the token. Results coming back name the parent's own class.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import sys
import uuid
import weakref
from collections.abc import Iterable
from typing import Any, NamedTuple

import cloudpickle
import numpy as np

from datamultiproc.core import BaseSample, Processor
from datamultiproc.exceptions import NotPicklableError
from datamultiproc.execution import _remote as remote_reads
from datamultiproc.execution import _transport as transport
from datamultiproc.execution._moduledata import dump_pipeline

__all__ = [
    "Encoded",
    "SampleState",
    "WireState",
    "classes_by_token",
    "decode",
    "decode_outcomes",
    "describe_unpicklable",
    "dumps_with_classes",
    "encode",
    "encode_pipeline",
    "encode_samples",
    "encode_shared",
    "peer_known_classes",
    "read_message",
    "register_class",
    "registered_class",
    "restore_sample",
    "sample_state",
    "write_all",
]


class SampleState(NamedTuple):
    """The parts a sample is flattened to for the trip to another process.

    On the wire it is a plain tuple in this field order (what :func:`sample_state`
    returns): a named tuple pickles about ten times slower, which would double the
    per-sample cost of small samples. The class names the fields.
    """

    cls: type[BaseSample]
    values: dict[str, Any]
    fields_set: set[str]
    extra: dict[str, Any] | None
    private: dict[str, Any] | None


#: A :class:`SampleState` as it travels: a plain tuple in the same field order.
WireState = tuple[type, dict[str, Any], set[str], Any, Any]

_HEADER = struct.Struct("<QI")  # pickle length, number of out-of-band buffers
_LENGTH = struct.Struct("<Q")
_SHARED = 1 << 63  # set in a buffer's length: it arrives as a descriptor, not in the pipe
_REMOTE = 1 << 62  # set in a buffer's length: the receiver reads it from the sender's memory
_set = object.__setattr__


def sample_state(sample: BaseSample) -> WireState:
    """Flatten a sample to plain parts that pickle at C speed (a plain :class:`SampleState`)."""
    return (
        type(sample),
        sample.__dict__,
        sample.__pydantic_fields_set__,
        sample.__pydantic_extra__,
        sample.__pydantic_private__,
    )


def restore_sample(state: WireState | SampleState) -> BaseSample:
    """Rebuild a sample from :func:`sample_state` parts, without validating it again."""
    cls, values, fields_set, extra, private = state
    sample: BaseSample = object.__new__(cls)
    _set(sample, "__dict__", values)
    _set(sample, "__pydantic_fields_set__", fields_set)
    _set(sample, "__pydantic_extra__", extra)
    _set(sample, "__pydantic_private__", private)
    return sample


def encode(obj: Any, known_classes: set[str] | None = None) -> list[Any]:
    """Return the frame pieces (header, pickle, buffers) of one message.

    ``known_classes`` holds the tokens of notebook classes the receiver already has;
    classes it lacks are sent by value once and added to the set. Without it, every
    class that cannot be imported by name travels by value.
    """
    return encode_shared(obj, known_classes, share=False).pieces


class Encoded(NamedTuple):
    """One message as :func:`encode_shared` made it.

    ``pieces`` go down the pipe; ``fds`` over the descriptor socket first (then the
    sender closes them); ``held`` are the buffers the receiver reads straight from
    the sender's memory, which must stay alive until the receiver has answered.
    """

    pieces: list[Any]
    fds: list[int]
    held: tuple[Any, ...] = ()


def encode_shared(
    obj: Any,
    known_classes: set[str] | None = None,
    *,
    share: bool = True,
    remote: bool = False,
    recycler: transport.Recycler | None = None,
) -> Encoded:
    """Like :func:`encode`, but large buffers become anonymous memory files.

    Returns the frame pieces and the descriptors to send, in order, over the peer's
    descriptor socket *before* the pieces (then close them). With ``share=False``,
    or where sharing is unavailable, every buffer is in the pieces. With ``remote``
    (the parent, where :func:`~._remote.remote_read_available`), large buffers are
    not copied at all: the message carries their addresses and the receiver reads
    them from this process (see :func:`~._remote.read_remote`); they are in
    ``held``. A ``recycler`` (see :func:`read_message`) writes buffers into memory
    files that came in and are no longer mapped, where there are some.
    """
    buffers: list[pickle.PickleBuffer] = []
    if known_classes is None:
        data = cloudpickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    else:
        stream = io.BytesIO()
        pickler = _ClassTablePickler(stream, known_classes, buffers.append)
        pickler.dump(obj)
        data = stream.getbuffer()
        known_classes |= pickler.sent  # only once the whole message pickled
    raws = [buffer.raw() for buffer in buffers]
    new_file = transport.share if recycler is None else recycler.share
    fds: list[int] = []
    lengths = []
    piped = []
    held = []
    addresses = []
    shared = share and transport.available()
    try:
        for raw in raws:
            if not shared or raw.nbytes < transport.SHARED_BYTES:
                piped.append(raw)
                lengths.append(_LENGTH.pack(raw.nbytes))
            elif remote and remote_reads.exclusive(raw):
                held.append(raw)
                addresses.append(remote_reads.address_of(raw))
                lengths.append(_LENGTH.pack(raw.nbytes | _REMOTE))
            else:
                fds.append(new_file(raw))
                lengths.append(_LENGTH.pack(raw.nbytes | _SHARED))
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    header = _HEADER.pack(len(data), len(raws)) + b"".join(lengths)
    if held:
        header += struct.pack(f"<{1 + len(addresses)}Q", os.getpid(), *addresses)
    return Encoded([header, data, *piped], fds, tuple(held))


# token <-> class: received from a peer, or minted here for a class sent by value.
_classes_by_token: dict[str, type] = {}
_tokens_by_class: weakref.WeakKeyDictionary[type, str] = weakref.WeakKeyDictionary()
_importable: weakref.WeakKeyDictionary[type, bool] = weakref.WeakKeyDictionary()
# Tokens the parent surely knows: received from it (or inherited at a fork). Not those a
# worker minted: an executor's parent may decode a later reply, naming the class by
# token, before the earlier one that defined it.
_received: set[str] = set()


def registered_class(token: str) -> type:
    """Return the class registered under ``token`` (called while unpickling)."""
    return _classes_by_token[token]


def register_class(token: str, cls: type) -> type:
    """Register a class received by value under its sender's token (called while unpickling)."""
    _received.add(token)
    return _mint(token, cls)


def _mint(token: str, cls: type) -> type:
    _classes_by_token.setdefault(token, cls)
    _tokens_by_class.setdefault(cls, token)
    return _classes_by_token[token]


def peer_known_classes() -> set[str]:
    """Tokens the parent knows: those it sent this process, and those it had at a fork."""
    return set(_received)


def _forked() -> None:
    _received.update(_classes_by_token)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


def _importable_by_name(cls: type) -> bool:
    known = _importable.get(cls)
    if known is None:
        target: Any = sys.modules.get(cls.__module__)
        for part in cls.__qualname__.split("."):
            target = getattr(target, part, None)
        # A spawned worker's __main__ is not the notebook's, so __main__ never counts.
        # Types like ``method`` claim to live in builtins and cloudpickle handles them.
        known = cls.__module__ == "builtins" or (target is cls and cls.__module__ != "__main__")
        _importable[cls] = known
    return known


class _ClassTablePickler(cloudpickle.Pickler):  # type: ignore[misc]
    """A cloudpickle pickler that sends each notebook class to a peer only once."""

    def __init__(self, file: Any, known: set[str], buffer_callback: Any) -> None:
        super().__init__(file, protocol=5, buffer_callback=buffer_callback)
        self.known = known
        self.sent: set[str] = set()
        self.defining: set[type] = set()

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, type) and obj not in self.defining and not _importable_by_name(obj):
            token = _tokens_by_class.get(obj)
            if token is None:
                token = uuid.uuid4().hex
                _mint(token, obj)
            if token in self.known or token in self.sent:
                return registered_class, (token,)
            self.sent.add(token)
            self.defining.add(obj)  # the nested save below pickles the class by value
            return register_class, (token, obj)
        return super().reducer_override(obj)


def decode(data: Any, buffers: Iterable[Any] = ()) -> Any:
    """Unpickle one message's pickle and out-of-band buffers."""
    return pickle.loads(data, buffers=buffers)


def write_all(fd: int, pieces: Iterable[Any]) -> None:
    """Write frame pieces to a blocking file descriptor."""
    for piece in pieces:
        view = memoryview(piece).cast("B")
        while view:
            view = view[os.write(fd, view) :]


def read_message(
    fd: int,
    channel: Any = None,
    recycler: transport.Recycler | None = None,
) -> Any:
    """Read and decode one framed message from a blocking descriptor; ``EOFError`` at end.

    ``channel`` is the Unix socket on which the sender passed the descriptors of
    shared buffers (see :func:`encode_shared`). A ``recycler`` keeps those
    descriptors open (for the reply) until its ``close()``; without one they are
    closed once mapped. Buffers the sender left in its own memory are read from
    there once the whole message is in (``RemoteReadError`` if the kernel refuses,
    ``ProcessLookupError`` if the sender is gone).
    """
    length, count = _HEADER.unpack(_read_exact(fd, _HEADER.size))
    sizes = struct.unpack(f"<{count}Q", _read_exact(fd, 8 * count)) if count else ()
    remote = sum(1 for size in sizes if size & _REMOTE)
    addresses: tuple[int, ...] = ()
    if remote:
        addresses = struct.unpack(f"<{1 + remote}Q", _read_exact(fd, 8 * (1 + remote)))
    data = _read_exact(fd, length)
    shared = sum(1 for size in sizes if size & _SHARED)
    if shared and channel is None:
        msg = "a message with shared buffers arrived without a descriptor channel"
        raise EOFError(msg)
    received = transport.receive_fds(channel, shared) if shared else []
    used = 0
    buffers: list[Any] = []
    map_file = transport.map_shared if recycler is None else recycler.map
    try:
        for size in sizes:
            if size & _SHARED:
                used += 1  # the descriptor is closed or kept, whatever happens
                buffers.append(map_file(received[used - 1], size & ~_SHARED))
            elif size & _REMOTE:
                buffers.append(None)  # read below, once the pipe holds nothing more of it
            else:
                buffers.append(_read_exact(fd, size, array=True))
    finally:
        for unused in received[used:]:
            os.close(unused)
    if remote:
        pid, places = addresses[0], iter(addresses[1:])
        for position, size in enumerate(sizes):
            if size & _REMOTE:
                buffers[position] = remote_reads.read_remote(pid, next(places), size & ~_REMOTE)
    return decode(data, buffers)


def _read_exact(fd: int, size: int, *, array: bool = False) -> Any:
    # numpy.empty skips the zero-fill bytearray() would do; arrays built on it stay writable.
    target: Any = np.empty(size, dtype=np.uint8) if array else bytearray(size)
    view = memoryview(target)
    done = 0
    while done < size:
        count = os.readv(fd, [view[done:]])
        if count == 0:
            msg = "connection closed"
            raise EOFError(msg)
        done += count
    return target


def describe_unpicklable(sample: Any, exc: BaseException) -> NotPicklableError:
    """Return a :class:`NotPicklableError` naming the sample, its bad field and the field's type."""
    sample_id = getattr(sample, "id", None)
    values = getattr(sample, "__dict__", {})
    for name, value in values.items():
        try:
            cloudpickle.dumps(value, protocol=5)
        except Exception as field_exc:
            msg = (
                f"sample {sample_id!r} cannot be sent to a worker process: field {name!r} holds a "
                f"{type(value).__module__}.{type(value).__qualname__}, which cannot be pickled "
                f"({type(field_exc).__name__}: {field_exc}). Create it inside a processor "
                f"(e.g. in setup()), or run with backend='thread' or 'sequential'."
            )
            return NotPicklableError(msg)
    msg = f"sample {sample_id!r} cannot be sent to a worker process: {type(exc).__name__}: {exc}"
    return NotPicklableError(msg)


def encode_pipeline(pipeline: Processor) -> tuple[bytes, bytes]:
    """Pickle a pipeline once per run; return ``(key, blob)``, the key naming its content.

    The blob holds the pipeline, the data of the user's modules its code reads and the
    caller's changes to its environment (see ``_moduledata``, ``_environ``;
    :func:`~._moduledata.load_pipeline` reads it back); the key changes when any does
    (but not when only ``sys.path`` grew).

    Raises
    ------
    NotPicklableError
        If a processor holds something that cannot be pickled; names the field.
    """
    try:
        return dump_pipeline(pipeline)
    except Exception as exc:
        raise _describe_bad_processor(pipeline, exc) from exc


def encode_samples(
    items: Iterable[tuple[int, BaseSample]], known_classes: set[str] | None = None
) -> bytes:
    """Pickle ``(index, sample)`` items for a worker.

    With ``known_classes`` (tokens the receiving workers already have, see
    :func:`dumps_with_classes`) notebook classes travel as tokens.
    """
    states = [(index, sample_state(s)) for index, s in items]
    if known_classes is None:
        blob: bytes = cloudpickle.dumps(states, protocol=5)
        return blob
    return dumps_with_classes(states, known_classes)


def dumps_with_classes(obj: Any, known_classes: set[str]) -> bytes:
    """Pickle ``obj`` in band, notebook classes in ``known_classes`` as tokens only.

    Classes not yet known travel by value, register under their token when
    unpickled, and are added to ``known_classes``.
    """
    stream = io.BytesIO()
    pickler = _ClassTablePickler(stream, known_classes, None)
    pickler.dump(obj)
    known_classes |= pickler.sent
    return stream.getvalue()


def classes_by_token(tokens: Iterable[str]) -> dict[str, type]:
    """Return the classes registered in this process under ``tokens``."""
    return {token: _classes_by_token[token] for token in tokens}


def decode_outcomes(blob: bytes) -> list[Any]:
    """Unpickle a worker's outcomes, rebuilding the samples."""
    return [
        (index, sample_id, None if state is None else restore_sample(state), steps, failure)
        for index, sample_id, state, steps, failure in pickle.loads(blob)
    ]


def _describe_bad_processor(pipeline: Processor, exc: BaseException) -> NotPicklableError:
    for processor in pipeline.iter_processors():
        for name in type(processor).model_fields:
            value = getattr(processor, name)
            try:
                cloudpickle.dumps(value, protocol=5)
            except Exception:
                msg = (
                    f"processor {processor.stage_name} cannot be sent to worker processes: field "
                    f"{name!r} holds a {type(value).__qualname__}, which cannot be pickled "
                    f"({type(exc).__name__}: {exc}). Create it in setup() and keep it in a "
                    f"private attribute, or run with backend='thread' or 'sequential'."
                )
                return NotPicklableError(msg)
    msg = f"the pipeline cannot be sent to worker processes: {type(exc).__name__}: {exc}"
    return NotPicklableError(msg)
