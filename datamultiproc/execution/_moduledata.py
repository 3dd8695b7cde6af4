"""Data of the user's own modules travels with the pipeline: warm workers never read it stale.

A worker imports ``utils.py`` once (or inherits it at a fork). A notebook that later
sets ``utils.THRESHOLD = 0.7``, or changes ``utils.TABLE["a"] = 2`` in place, does not
change the worker's copy, and a warm worker (or a spawned one, which imports the
file afresh) would go on reading the old value without a word, where the sequential
backend reads the new one. So the pipeline carries, by value, the data globals (and
the data attributes of the classes) of the user's own modules that its code reads,
found the way a Cache finds them (see
``storage._parts.data_reads``): plain data only (numbers, strings, containers, numpy
arrays, pandas objects, pydantic models, dataclasses), each pickled on its own. A
value of another type (a loaded model, a connection), one that cannot be pickled, and
the data of a module whose file was edited on disk but not reloaded here (workers then
run what the file says, see ``_reloads``) stay as each worker has them. A changed
value changes the pipeline's bytes, hence its key: workers set the pipeline up again,
and before running its samples set those globals to the values sent
(:meth:`ModuleData.apply`). Globals of a notebook's ``__main__`` travel with the code
already (cloudpickle sends them by value), and so do its ``functools`` cached functions
(which pickle would send by name: warm fork workers ran the version of the function they
forked with after the cell was edited; see ``_memocaches``). Environment variables the
notebook changed travel with the pipeline too (see ``_environ``), and so does word of a
``functools`` cache the notebook cleared.

The calling process never applies them (its modules hold the originals), nor does
any worker running inside it (a Dask cluster of threads).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import decimal
import enum
import fractions
import hashlib
import importlib
import io
import os
import pathlib
import pickle
import sys
from typing import Any, NamedTuple

import cloudpickle
import numpy as np
from pydantic import BaseModel

from datamultiproc.core import Processor
from datamultiproc.execution._codestate import file_unchanged_since_loaded
from datamultiproc.execution._environ import Environment, current_import_path
from datamultiproc.execution._environ import current as current_environment
from datamultiproc.execution._memocaches import (
    LRU_CACHE_TYPE,
    cleared_since,
    generation,
    is_memo_cache,
    rebuilt_cache,
)
from datamultiproc.storage._origins import module_origin
from datamultiproc.storage._parts import data_reads

__all__ = ["ModuleData", "collect", "dump_pipeline", "load_pipeline"]

_MAIN_MODULES = frozenset({"__main__", "__mp_main__"})
_PLAIN = (
    int,
    float,
    complex,
    str,
    bytes,
    bytearray,
    list,
    tuple,
    dict,
    set,
    frozenset,
    range,
    type(None),
    decimal.Decimal,
    fractions.Fraction,
    datetime.date,
    datetime.time,
    datetime.timedelta,
    pathlib.PurePath,
    enum.Enum,
    np.ndarray,
    np.generic,
    BaseModel,
)


class ModuleData(NamedTuple):
    """Values to set in a worker: ``(module, owner, name, pickled value)`` each.

    ``owner`` is ``""`` for a module global, else the qualified name of the class in
    ``module`` whose attribute it is.
    """

    values: tuple[tuple[str, str, str, bytes], ...] = ()
    sender: int = 0  # the calling process's pid: it never applies them
    environment: Environment = Environment()  # see _environ
    caches: tuple[tuple[str, str, str, int], ...] = ()  # (module, owner, name, clears)

    def apply(self) -> None:
        """Set the environment, clear the caches the caller cleared, set each global as sent.

        Not in the calling process (its modules and environment hold the originals).

        A module the worker cannot import, a class it cannot find, or a value it cannot
        unpickle is left as the worker has it.
        """
        if os.getpid() == self.sender:
            return
        self.environment.apply()
        for module_name, owner, name, clears in self.caches:
            if cleared_since(module_name, owner, name, clears):
                with contextlib.suppress(Exception):  # not found here: nothing to clear
                    cache = getattr(_owner(module_name, owner), name)
                    if is_memo_cache(cache):
                        cache.cache_clear()
        for module_name, owner, name, data in self.values:
            try:
                setattr(_owner(module_name, owner), name, pickle.loads(data))
            except Exception:  # the worker keeps its own value, as before
                continue


def _owner(module_name: str, owner: str) -> Any:
    """Return module ``module_name`` or, with ``owner``, the class of that name in it."""
    target: Any = sys.modules.get(module_name)
    if target is None:
        target = importlib.import_module(module_name)
    for part in owner.split(".") if owner else ():
        target = getattr(target, part)
    return target


def collect(pipeline: Processor) -> ModuleData:
    r"""Return the data globals of the user's own modules that ``pipeline``'s code reads.

    Examples
    --------
    >>> import sys, types
    >>> settings = sys.modules["settings_example"] = types.ModuleType("settings_example")
    >>> exec(
    ...     "from datamultiproc import Processor\n"
    ...     "THRESHOLD = 0.5\n"
    ...     "class Flag(Processor):\n"
    ...     "    def process(self, sample):\n"
    ...     "        sample.flag = sample.value > THRESHOLD\n"
    ...     "        return sample\n",
    ...     settings.__dict__,
    ... )
    >>> [(module, owner, name) for module, owner, name, _ in collect(settings.Flag()).values]
    [('settings_example', '', 'THRESHOLD')]
    """
    values = []
    caches = []
    for module, owner, name, value in data_reads(pipeline):
        if module is not None and is_memo_cache(value) and _users_own(value):
            # The count changes the key; a worker clears its copy (the notebook's own
            # travel by value: a new key brings a new, empty one).
            caches.append((module, owner, name, generation(value)))
            continue
        if module is None or module in _MAIN_MODULES or not _plain(value):
            continue
        if owner and ("<locals>" in owner or name.startswith("_")):
            continue  # a class made inside a function (no name to find it by); internals
        if not file_unchanged_since_loaded(module):
            continue  # edited on disk, not reloaded here: workers follow the file (_reloads)
        try:
            data = cloudpickle.dumps(value, protocol=5)
        except Exception:
            continue
        values.append((module, owner, name, data))
    return ModuleData(tuple(values), os.getpid(), current_environment(), tuple(caches))


def dump_pipeline(pipeline: Processor) -> tuple[bytes, bytes]:
    """Pickle ``pipeline`` with the module data its code reads and the caller's environment.

    Returns ``(key, blob)``; the key covers all but the import path (see ``_environ``).
    The environment and the import path also go first, on their own: a worker applies
    them before unpickling the pipeline, whose modules may live in a folder the notebook
    added to ``sys.path``, or read a variable when imported.
    """
    data = collect(pipeline)
    stream = io.BytesIO()
    _PipelinePickler(stream).dump((pipeline, data))
    inner = stream.getvalue()
    envelope = (data.environment, current_import_path(), data.sender, inner)
    return hashlib.blake2b(inner, digest_size=16).digest(), pickle.dumps(envelope, protocol=5)


def load_pipeline(blob: bytes) -> tuple[Processor, ModuleData]:
    """Unpickle what :func:`dump_pipeline` made: the pipeline and the module data it reads."""
    environment, import_path, sender, inner = pickle.loads(blob)
    if os.getpid() != sender:
        import_path.apply()
        environment.apply()
    pipeline, data = pickle.loads(inner)
    return pipeline, data


class _PipelinePickler(cloudpickle.Pickler):  # type: ignore[misc]
    """Pickles a notebook's ``functools`` cached functions by value (see ``_memocaches``)."""

    def __init__(self, file: Any) -> None:
        super().__init__(file, protocol=5)

    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is LRU_CACHE_TYPE and getattr(obj, "__module__", None) in _MAIN_MODULES:
            return rebuilt_cache, (obj.__wrapped__, obj.cache_parameters())
        return super().reducer_override(obj)


def _users_own(function: Any) -> bool:
    # A library's cached function is the library's business: its caches are left alone.
    module = getattr(function, "__module__", None)
    return module in _MAIN_MODULES or module_origin(module).kind == "user"


def _plain(value: Any) -> bool:
    if isinstance(value, _PLAIN):
        return True
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return True
    return type(value).__module__.partition(".")[0] == "pandas"
