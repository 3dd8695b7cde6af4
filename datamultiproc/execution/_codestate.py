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

__all__ = ["CodeState", "code_state"]

CodeState = tuple[tuple[str, int, int, int], ...]  # (name, id(module), mtime_ns, size)

_LIBRARY_MODULES = ("datamultiproc", "__main__", "__mp_main__")
_classified: dict[str, tuple[int, str | None]] = {}  # name -> (id(module), user file or None)


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
        state.append((name, id(module), stat.st_mtime_ns, stat.st_size))
    state.sort()
    return tuple(state)


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
