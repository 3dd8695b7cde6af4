"""Warm workers we do not start ourselves follow the parent's edits to user modules.

The process backend replaces its warm pool when the user code changes (see
:mod:`._codestate`). An executor's worker processes and Dask's workers belong to the
user, so they are kept and brought up to date instead:

- The parent sends :func:`code_token`, a digest of its user modules' files (name,
  modification time, size), with every chunk.
- A worker that sees a new token (:func:`follow`) reloads, in its own process, the user
  modules it has imported whose files changed since it imported them, and the user
  modules that took functions or classes from those (``from helpers import scale``),
  each after the modules it takes from. The caller then drops its set-up pipelines, so
  the next chunk unpickles the pipeline against the new code and calls ``setup()``
  again. A new token that changes nothing there (a module the parent imported since)
  keeps them.
- Modules a worker imported before its first chunk (by other tasks of yours) are taken
  as current at that first chunk, except those a forked worker got from its parent at
  the fork: the parent may have imported them long before, so one whose file was written
  after the fork is stale and reloaded (an executor forks its workers at its first task,
  and a worker that got no chunk until after an edit still holds the old module).
- A module edited on disk but not reloaded in the parent is reloaded too: the worker
  runs what the file says, as a fresh worker of the process backend would.
- In the process that computed the token (an executor or a Dask cluster running in
  the parent's own process) nothing is reloaded behind the user's back: the kept
  pipelines are only dropped, so classes are looked up again in the modules as the
  user left them.

What each worker imported, and from which file state, is noted after it loads a
pipeline and after each chunk (:func:`note_imports`, nearly free while nothing new
was imported).
"""

from __future__ import annotations

import hashlib
import importlib
import os
import sys
import time
from types import FunctionType, ModuleType

from datamultiproc.execution._codestate import code_state

__all__ = ["ReloadError", "code_token", "follow", "note_imports"]

_seen: dict[str, tuple[int, int, int]] = {}  # name -> (id(module), mtime_ns, size) as loaded
_counted = [-1]  # len(sys.modules) when _seen was last brought up to date
_synced: list[bytes | None] = [None]  # the token this process last followed
_parent_pid = [-1]  # the process that computed a token: it never reloads
_forked_at = [0]  # time.time_ns() when this process was forked; 0 if it was not
_inherited: dict[str, int] = {}  # name -> id(module) of the modules present at the fork
# File times come from a coarse clock (a few ms behind time.time_ns()): a file written
# this close before the fork counts as written after it (at worst one extra reload).
_CLOCK_SLACK_NS = 50_000_000


class ReloadError(Exception):
    """A changed user module failed to reload in a worker."""

    def __init__(self, module: str, exc: BaseException) -> None:
        super().__init__(
            f"cannot reload the changed module {module!r} in worker process {os.getpid()} "
            f"({type(exc).__name__}: {exc}); fix the module, then run again"
        )
        self.module = module


def code_token() -> bytes:
    """Return a digest of the user modules loaded here and their files (in the parent).

    Examples
    --------
    >>> code_token() == code_token()
    True
    """
    _parent_pid[0] = os.getpid()
    files = [(name, mtime, size) for name, _, mtime, size in code_state()]
    return hashlib.blake2b(repr(files).encode(), digest_size=16).digest()


def follow(token: bytes) -> bool:
    """Bring this worker's user modules up to the parent's ``token``.

    Returns whether the caller must drop its set-up pipelines: a module was reloaded
    here, or this is the parent's own process (whose modules the user reloads). Raises
    :class:`ReloadError` if a changed module fails to reload; the token is then not
    taken, so the next call tries again.
    """
    if token == _synced[0]:
        return False
    if os.getpid() == _parent_pid[0]:
        drop = True
    else:
        changed = _changed_modules()
        _reload(changed)
        drop = bool(changed)  # e.g. a module the parent imported since: nothing to redo
    _synced[0] = token
    return drop


def note_imports() -> None:
    """Remember the file state of user modules imported since the last call."""
    if len(sys.modules) == _counted[0]:
        return
    for name, ident, mtime, size in code_state():
        if _seen.get(name, (None,))[0] != ident:
            if _inherited.get(name) == ident and mtime >= _forked_at[0] - _CLOCK_SLACK_NS:
                mtime = size = -1  # loaded before the fork, its file written since: stale
            _seen[name] = (ident, mtime, size)
    _counted[0] = len(sys.modules)


def _forked() -> None:
    # In the child: its modules are the parent's, loaded at some time before now.
    _forked_at[0] = time.time_ns()
    _inherited.clear()
    _inherited.update({name: id(module) for name, module in list(sys.modules.items())})
    _synced[0] = None  # a token the parent followed says nothing of what this child holds


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


def _changed_modules() -> list[str]:
    """Return the user modules to reload, each after the changed modules it takes from."""
    note_imports()
    state = {name: (ident, mtime, size) for name, ident, mtime, size in code_state()}
    changed = {name for name, now in state.items() if _seen.get(name, now) != now}
    if not changed:
        return []
    uses = {name: _taken_from(sys.modules.get(name), state.keys() - {name}) for name in state}
    grown = True
    while grown:  # add the modules that hold a function or class of a changed one
        grown = False
        for name in state.keys() - changed:
            if uses[name] & changed:
                changed.add(name)
                grown = True
    order: list[str] = []
    while changed:
        ready = sorted(name for name in changed if not uses[name] & changed) or sorted(changed)
        order.append(ready[0])  # (sorted(changed) breaks a cycle)
        changed.discard(ready[0])
    return order


def _taken_from(module: ModuleType | None, names: set[str]) -> set[str]:
    """Return which of ``names`` the module holds, or holds a function or class of."""
    taken = set()
    for value in list(vars(module).values()) if module is not None else ():
        if isinstance(value, ModuleType):
            taken.add(value.__name__)
        elif isinstance(value, (type, FunctionType)):
            taken.add(value.__module__)
    return taken & names


def _reload(names: list[str]) -> None:
    for name in names:
        module = sys.modules.get(name)
        if module is None:
            continue
        try:
            importlib.reload(module)
        except Exception as exc:
            raise ReloadError(name, exc) from exc  # still noted as changed: tried again
        _inherited.pop(name, None)  # loaded here now, from the file as it is
        _seen.pop(name, None)
        _counted[0] = -1
        note_imports()
