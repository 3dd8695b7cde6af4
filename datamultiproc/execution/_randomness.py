"""Each worker process draws its own random numbers.

A forked process starts with a copy of its parent's random state. Python's
``random`` reseeds itself in a forked child; numpy's global generator
(``np.random.rand``, ``np.random.shuffle``, ``np.random.normal``) does not. So every
fork worker of a notebook that had called ``np.random.seed(0)`` drew the same numbers,
and samples in different workers got the same "random" augmentation, crop or split,
without a word. A worker process reseeds numpy's global generator from the operating
system's entropy before it sets up its first pipeline (spawned workers draw fresh
seeds when they import numpy anyway; this makes every start method alike).

Never in the calling process: a thread pool, or a Dask cluster of threads, runs
there, and the notebook's own seeded sequence must stay as the notebook set it.
Generators a processor makes itself (``np.random.default_rng(seed)``) are untouched;
derive their seed from the sample (its id) for results that do not depend on which
worker ran it.
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["own_random_numbers"]

_RESEEDED_IN: int | None = None  # the pid that reseeded (a forked child inherits it)


def own_random_numbers(caller: int) -> bool:
    """In a process other than ``caller`` (its pid), reseed numpy's global generator once.

    Returns ``True`` if it reseeded now.

    Examples
    --------
    >>> own_random_numbers(os.getpid())  # the calling process keeps its sequence
    False
    """
    global _RESEEDED_IN
    pid = os.getpid()
    if pid in (caller, _RESEEDED_IN):
        return False
    _RESEEDED_IN = pid
    np.random.seed()  # from the operating system's entropy
    return True
