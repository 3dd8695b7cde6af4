"""A first run decides before any worker starts whether the workers could beat the parent.

A run with no worker alive and no figures from an earlier run of its pipeline (the
first run of a notebook cell) used to start its workers, wait for their first chunks
to measure how fast they are, and only then let the parent take samples over. For
tiny samples that cost more than the whole run's gain: forking takes milliseconds,
and while a forked worker lives, each page the parent writes first is copied.

Instead the parent times a few samples itself (:class:`~._inline.ParentRunner`'s
probe) and :func:`transfer_seconds` times what moving those samples costs: each
input and result encoded and decoded once, as the workers' path does it (the
parent's half and the worker's half of a round trip), buffers copied once. From
these :func:`estimated_pace` predicts the pace the workers would reach; the parent
keeps the samples only if it beats that pace clearly (see
:meth:`~._policy.InlinePolicy.observe_first`), and starts the workers later if the
samples get more expensive.

A pipeline whose own code sets something up (``setup()`` of a user's processor, e.g.
loading a model) starts its workers at once, as before: the parent would set it up
first, alone, before any worker started (:func:`sets_up`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from datamultiproc.core import BaseSample, Processor, walk
from datamultiproc.execution._codec import decode, encode, sample_state
from datamultiproc.execution._job import Item, Outcome

__all__ = ["encoded_bytes", "estimated_pace", "sets_up", "transfer_seconds"]

_REPEATS = 3  # a trip is timed up to this often (the fastest counts) ...
_REPEAT_SECONDS = 0.0005  # ... while the trips so far took less than this


class _AllKnown(set[str]):
    """Class tokens a peer "knows": every one, so no notebook class is pickled by value.

    The classes register in this process as the pickler meets them; decoding here
    finds them there. A worker gets each class by value once, a cost of its first
    message only, which the estimate leaves out.
    """

    def __contains__(self, token: object) -> bool:
        return True


def sets_up(pipeline: Processor) -> bool:
    """Whether a step of ``pipeline`` has a ``setup()`` of its user's own (not the library's)."""
    for position in walk(pipeline):
        method = type(position.step).setup
        if not getattr(method, "__module__", "").startswith("datamultiproc."):
            return True
    return False


def transfer_seconds(items: Sequence[Item], outcomes: Sequence[Outcome] = ()) -> float | None:
    """Return the seconds per item that moving ``items`` and their results costs, both sides.

    Each of the inputs, and each result among ``outcomes``, is encoded as the workers'
    path encodes it (the sample flattened by ``sample_state``, pickled with the class
    table), its large buffers copied once (a pipe or a memory file takes one copy), and
    decoded. ``None`` if one of them cannot be pickled (the workers' path fails it).

    Examples
    --------
    >>> from datamultiproc import BaseSample
    >>> class Tiny(BaseSample):
    ...     data: int
    >>> 0 < transfer_seconds([(0, Tiny(id="a", data=1))]) < 0.1
    True
    >>> import threading
    >>> class Held(BaseSample):
    ...     lock: object
    >>> transfer_seconds([(0, Held(id="b", lock=threading.Lock()))]) is None
    True
    """
    if not items:
        return 0.0
    inputs = ("chunk", 0, b"", [(index, sample_state(sample)) for index, sample in items])
    results = (0, [_wire(outcome) for outcome in outcomes], 0.0, 0.0)
    fastest = float("inf")
    spent = 0.0
    for _ in range(_REPEATS):
        started = time.perf_counter()
        try:
            _trip(inputs)
            if outcomes:
                _trip(results)
        except Exception:
            return None
        took = time.perf_counter() - started
        fastest = min(fastest, took)
        spent += took
        if spent > _REPEAT_SECONDS:
            break
    return fastest / len(items)


def encoded_bytes(item: Item) -> int | None:
    """Return the bytes one item takes in a chunk for a worker (buffers counted, not copied).

    ``None`` if it cannot be pickled. Inline chunks use it for their byte cap before
    any chunk went to a worker (a first run that starts none).

    Examples
    --------
    >>> import numpy as np
    >>> from datamultiproc import BaseSample
    >>> class Big(BaseSample):
    ...     array: np.ndarray
    >>> encoded_bytes((0, Big(id="a", array=np.zeros(1000)))) > 8000
    True
    """
    try:
        pieces = encode(("chunk", 0, b"", [(item[0], sample_state(item[1]))]), _AllKnown())
    except Exception:
        return None
    return sum(memoryview(piece).nbytes for piece in pieces)


def estimated_pace(inline: float, transfer: float, *, workers: int, cores: int) -> float:
    """Return the wall seconds per sample the workers would reach, at best.

    ``inline`` is the parent's time to process a sample (a worker's is taken to be the
    same), ``transfer`` a sample's round trip (:func:`transfer_seconds`); each side pays
    about that much per sample (its half of the coding, plus the pipes, framing and
    records: on W1 the parent's CPU per sample in a run on the workers was 1.2 times a
    trip). The pace is bounded by the parent alone, by the workers, and by the cores
    that parent and workers share.

    Examples
    --------
    >>> round(estimated_pace(5e-6, 6e-6, workers=2, cores=2) * 1e6, 1)  # tiny samples
    8.5
    >>> round(estimated_pace(2e-3, 6e-6, workers=2, cores=2) * 1e3, 3)  # 2 ms each
    1.006
    """
    return max(
        transfer,
        (inline + transfer) / max(workers, 1),
        (inline + 2 * transfer) / max(min(workers + 1, cores), 1),
    )


def _trip(message: Any) -> Any:
    header, data, *buffers = encode(message, _AllKnown())
    del header
    return decode(data, [bytearray(buffer) for buffer in buffers])


def _wire(outcome: Outcome) -> tuple[Any, ...]:
    sample: BaseSample | None = outcome.sample
    state = None if sample is None else sample_state(sample)
    steps = tuple(tuple(step) for step in outcome.record.steps)
    return (outcome.index, outcome.record.sample_id, state, steps, None)
