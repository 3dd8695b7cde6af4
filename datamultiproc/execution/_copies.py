"""Deep copies of samples for the in-process backends, faster than ``copy.deepcopy``.

``run`` never changes the caller's samples. Worker processes get copies by
pickling; the sequential and thread backends copy each sample here first. The
copy is what pydantic's ``model_copy(deep=True)`` makes, with a fast path for
the values samples usually hold: immutable scalars and strings are shared, lists,
tuples, dicts and numpy arrays are copied directly, anything else goes through
``copy.deepcopy``. One memo per sample keeps shared objects shared, as pickling
and ``deepcopy`` do.
"""

from __future__ import annotations

import copy
from typing import Any, TypeVar

import numpy as np

__all__ = ["copy_sample"]

_T = TypeVar("_T")
_ATOMIC = frozenset({int, float, str, bool, bytes, complex, type(None)})
_set = object.__setattr__


def copy_sample(sample: _T) -> _T:
    """Return a deep copy of a pydantic model, like ``model_copy(deep=True)``."""
    cls = type(sample)
    new = cls.__new__(cls)
    memo: dict[int, Any] = {}
    state = sample.__dict__
    _set(new, "__dict__", {name: _copy(value, memo) for name, value in state.items()})
    extra = getattr(sample, "__pydantic_extra__", None)
    _set(new, "__pydantic_extra__", None if extra is None else copy.deepcopy(extra, memo))
    _set(new, "__pydantic_fields_set__", set(sample.__pydantic_fields_set__))  # type: ignore[attr-defined]
    private = getattr(sample, "__pydantic_private__", None)
    _set(new, "__pydantic_private__", None if private is None else copy.deepcopy(private, memo))
    return new


def _copy(value: Any, memo: dict[int, Any]) -> Any:
    kind = type(value)
    if kind in _ATOMIC:
        return value
    known = memo.get(id(value))
    if known is not None:
        return known
    if kind is list:
        result: Any = []
        memo[id(value)] = result
        result.extend(_copy(item, memo) for item in value)
    elif kind is tuple:
        result = tuple(_copy(item, memo) for item in value)
    elif kind is dict:
        result = {}
        memo[id(value)] = result
        for key, item in value.items():
            result[_copy(key, memo)] = _copy(item, memo)
    elif kind is np.ndarray and value.dtype.kind != "O":
        result = value.copy(order="K")
    else:
        return copy.deepcopy(value, memo)
    memo[id(value)] = result
    # deepcopy keeps the originals alive for the memo; do the same so ids stay unique.
    memo.setdefault(id(memo), []).append(value)
    return result
