"""``functools`` cached functions in workers: never an old version, never an old cache.

Pickle sends an ``lru_cache`` (or ``functools.cache``) function by name. For one defined
in a notebook, that name meant the worker's own ``__main__``: a warm fork worker ran the
version it forked with after the cell was edited and run again (and a Cache, keyed on
the new code, stored the old code's results under the new key), and spawned workers
could not find it at all. The notebook's cached functions therefore travel by value
(:func:`rebuilt_cache`: the function, wrapped anew, with an empty cache, once per
pipeline in each worker); those of the user's modules travel by name, as the modules'
reloads keep them current (see ``_reloads``).

A processor that loads a lookup table through such a function fills one cache per
process. A notebook that edits the table's file and calls ``load_table.cache_clear()``
gets the new table on the sequential backend; warm workers kept their own filled caches
and went on using the old table, without a word.

So the first time a pipeline's code is seen reading such a cache (found as the Cache's
key finds data, see ``_moduledata``), the calling process counts its ``cache_clear()``
calls from then on: the cache gets its own ``cache_clear`` attribute, which counts and
then calls the real one (the function and its cache are otherwise untouched). The count
travels with the pipeline (so a clear changes the pipeline's key), and a worker clears
its own copy of the cache when the count differs from the one it last saw
(:func:`cleared_since`). Clears made before the cache was first seen are not counted.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any

__all__ = ["LRU_CACHE_TYPE", "cleared_since", "generation", "is_memo_cache", "rebuilt_cache"]

LRU_CACHE_TYPE = type(functools.lru_cache(maxsize=None)(len))

# In a worker: (module, owner, name) -> the generation its copy was last cleared for.
_CLEARED: dict[tuple[str, str, str], int] = {}


def is_memo_cache(value: Any) -> bool:
    """Return whether ``value`` is a function wrapped by ``functools.lru_cache``."""
    return callable(value) and hasattr(value, "cache_info") and hasattr(value, "cache_clear")


def generation(cache: Any) -> int:
    """Return how often ``cache_clear()`` was called since this process first asked.

    Examples
    --------
    >>> import functools
    >>> @functools.cache
    ... def square(x):
    ...     return x * x
    >>> generation(square)
    0
    >>> square(3), square.cache_clear(), square.cache_info().currsize, generation(square)
    (9, None, 0, 1)
    """
    counter = vars(cache).get("cache_clear") if hasattr(cache, "__dict__") else None
    if isinstance(counter, _CountingClear):
        return counter.count
    with contextlib.suppress(AttributeError, TypeError):  # no attributes of its own: uncounted
        cache.cache_clear = _CountingClear(cache.cache_clear)
    return 0


class _CountingClear:
    """A cache's ``cache_clear`` that counts its calls."""

    __slots__ = ("clear", "count")

    def __init__(self, clear: Any) -> None:
        self.clear, self.count = clear, 0

    def __call__(self) -> None:
        self.count += 1
        self.clear()


def cleared_since(module: str, owner: str, name: str, seen: int) -> bool:
    """In a worker: whether the caller cleared this cache since this process last asked."""
    place = (module, owner, name)
    if _CLEARED.get(place, 0) == seen:
        return False
    _CLEARED[place] = seen
    return True


def rebuilt_cache(function: Any, parameters: dict[str, Any]) -> Any:
    """Wrap ``function`` in a new, empty ``functools.lru_cache`` (a notebook's, unpickled)."""
    return functools.lru_cache(maxsize=parameters["maxsize"], typed=parameters["typed"])(function)
