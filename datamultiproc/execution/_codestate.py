"""A token of the user code loaded in this process, so warm workers never run stale code.

Warm workers keep the modules they imported. When the user edits a module of their
own (``utils.py`` beside the notebook) and reloads it, or edits it on disk, workers
started earlier would still run the old code. :func:`code_state` describes every
loaded *user* module (not the standard library, not an installed distribution, not
datamultiproc) by its module object, file size and modification time; the pool
compares it with the state its workers started from and starts fresh workers when
it differs.

Modules are classified once per module object, so a call costs one pass over
``sys.modules`` and one ``stat`` per user module.
"""

from __future__ import annotations

import os
import sys
import sysconfig

__all__ = ["CodeState", "code_state", "file_unchanged_since_loaded"]

CodeState = tuple[tuple[str, int, int, int], ...]  # (name, id(module), mtime_ns, size)

_LIBRARY_MODULES = ("datamultiproc", "__main__", "__mp_main__")
_classified: dict[str, tuple[int, str | None]] = {}  # name -> (id(module), user file or None)
# name -> (id(module), id(module.__spec__), mtime_ns, size) when first seen here, or
# reloaded (a reload gives the module a new spec): the file the module was loaded from.
_loaded: dict[str, tuple[int, int, int, int]] = {}


def code_state() -> CodeState:
    """Return the state of the user modules loaded now.

    Two calls return equal tokens unless a user module was imported, reloaded or
    replaced in ``sys.modules``, or its file changed on disk, in between.
    """
    state = []
    for name, module in list(sys.modules.items()):
        known = _classified.get(name)
        if known is None or known[0] != id(module):
            known = _classified[name] = (id(module), _user_file(name, module))
        path = known[1]
        if path is None:
            continue
        try:
            stat = os.stat(path)
        except OSError:
            state.append((name, id(module), -1, -1))
            continue
        _note_loaded(name, module, stat)
        state.append((name, id(module), stat.st_mtime_ns, stat.st_size))
    state.sort()
    return tuple(state)


def file_unchanged_since_loaded(name: str) -> bool:
    """Whether module ``name``'s file is as it was when this process loaded it.

    ``False`` after the file was edited on disk but not reloaded here. Known from the
    first time this process looked at the module (every run does, see
    :func:`code_state`); a module without a file counts as unchanged.
    """
    module = sys.modules.get(name)
    path = getattr(module, "__file__", None)
    if module is None or not isinstance(path, str):
        return True
    try:
        stat = os.stat(path)
    except OSError:
        return True
    return _note_loaded(name, module, stat)


def _note_loaded(name: str, module: object, stat: os.stat_result) -> bool:
    """Remember the file state a module was first seen (or reloaded) with; compare with it."""
    ident = (id(module), id(getattr(module, "__spec__", None)))
    known = _loaded.get(name)
    if known is None or known[:2] != ident:
        _loaded[name] = (*ident, stat.st_mtime_ns, stat.st_size)
        return True
    return known[2:] == (stat.st_mtime_ns, stat.st_size)


def _user_file(name: str, module: object) -> str | None:
    if name.split(".", 1)[0] in _LIBRARY_MODULES:
        return None
    path = getattr(module, "__file__", None)
    if not isinstance(path, str) or not path.endswith(".py"):
        return None  # built-in, extension module or namespace package
    path = os.path.realpath(path)
    return None if path.startswith(_library_roots()) else path


_roots: list[tuple[str, ...]] = []


def _library_roots() -> tuple[str, ...]:
    if not _roots:
        paths = sysconfig.get_paths()
        found = {
            os.path.realpath(paths[key])
            for key in ("stdlib", "platstdlib", "purelib", "platlib")
            if key in paths
        }
        found |= {
            os.path.realpath(p) for p in sys.path if "site-packages" in p or "dist-packages" in p
        }
        found |= {os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix)}
        _roots.append(tuple(sorted(root + os.sep for root in found)))
    return _roots[0]
