"""Each sample of a chunk owns its objects in a worker, as each sample copied alone would.

A chunk of samples travels to a worker in one pickle, and pickle sends an object
that several samples hold only once: in the worker those samples hold one object
again. A processor that changes it in place (``sample.image *= 2`` on variants made
from one base image, ``sample.meta["seen"] = True`` on samples built around one
dict) then changes the other samples too, and what a sample ends up with depends on
which samples happened to share its chunk. The sequential and thread backends and
the parent copy each sample alone (``copy_sample``), so nothing is shared between
samples there. :func:`own_objects` gives workers the same semantics: a sample that
holds an object an earlier sample of its chunk holds too is replaced by a deep copy
(objects shared *within* one sample stay shared, as in ``copy_sample``).

Finding shared objects walks each sample's containers (lists, dicts, sets, tuples,
nested models) and notes every mutable object in them: about a microsecond for a
small sample, in the worker. Arrays and other objects count as one object each;
their insides are not walked (two different arrays that view one buffer are pickled
as two independent arrays anyway).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from datamultiproc.execution._codec import restore_sample, sample_state
from datamultiproc.execution._copies import ATOMIC, copy_sample, immutable

__all__ = ["own_objects"]


def own_objects(items: list[Any]) -> int:
    """Give each ``(index, WireState)`` item of a chunk objects no earlier item holds.

    Replaces, in place, the state of every item that shares a mutable object with
    an earlier item by the state of a deep copy. Returns how many were replaced.

    Examples
    --------
    >>> from datamultiproc import BaseSample
    >>> class Tagged(BaseSample):
    ...     tags: object = None
    >>> shared = ["raw"]
    >>> items = [(0, sample_state(Tagged(id="a", tags=shared))),
    ...          (1, sample_state(Tagged(id="b", tags=shared)))]
    >>> own_objects(items)
    1
    >>> items[0][1][1]["tags"] is shared, items[1][1][1]["tags"] is shared
    (True, False)
    """
    seen: set[int] = set()
    replaced = 0
    for position, (index, state) in enumerate(items):
        _, values, fields_set, extra, private = state
        mine = {id(fields_set)}  # pydantic adds to it when a field is assigned
        for value in values.values():
            kind = type(value)
            if kind in ATOMIC:
                continue
            if kind is list and all(type(item) in ATOMIC for item in value):
                mine.add(id(value))  # numbers, strings, history entries: the usual sample
                continue
            _note_mutable(value, mine)
        for part in (extra, private):
            if part:
                for value in part.values():
                    _note_mutable(value, mine)
        if mine.isdisjoint(seen):
            seen |= mine
        else:
            items[position] = (index, sample_state(copy_sample(restore_sample(state))))
            replaced += 1
    return replaced


def _note_mutable(root: Any, found: set[int]) -> None:
    """Add to ``found`` the id of every mutable object reachable from ``root`` through containers."""
    pending: list[Any] = [root]
    while pending:
        value = pending.pop()
        kind = type(value)
        if kind in ATOMIC:
            continue
        if kind is tuple or kind is frozenset:
            pending.extend(value)  # immutable itself; what it holds may not be
            continue
        if immutable(value):
            continue
        key = id(value)
        if key in found:
            continue  # shared within this sample (or a cycle): copies keep that
        found.add(key)
        if kind is list or kind is set:
            pending.extend(value)
        elif kind is dict:
            pending.extend(value.values())
        elif isinstance(value, BaseModel):
            pending.extend(value.__dict__.values())
            for part in (value.__pydantic_extra__, value.__pydantic_private__):
                if part:
                    pending.extend(part.values())
