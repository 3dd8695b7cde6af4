"""Classes defined in a notebook (``__main__``), in files written and read by any process.

Plain pickle stores a class by reference, ``__main__.Number``. In a notebook that
works, but a spawned worker has no ``__main__.Number``: the runner ships such
classes by value, so the worker can neither write a sample of that class by
reference nor load an entry the notebook wrote. Here, workers write notebook
classes *by name* through :func:`resolve_class`, which finds the class in
``__main__`` when loaded in the notebook (so loaded samples are instances of the
user's current class), and otherwise among the notebook classes this process has
met; readers fall back to the same lookup when plain ``pickle.load`` cannot find a
``__main__`` class.
"""

from __future__ import annotations

import pickle
import sys
from typing import IO, Any

__all__ = ["NotebookClassPickler", "load_with_notebook_classes", "remember", "resolve_class"]

_MAIN_MODULES = frozenset({"__main__", "__mp_main__"})
_known: dict[str, type] = {}  # qualname -> class, for notebook classes met in this process


def remember(cls: type) -> None:
    """Note a notebook class met in this process (no-op for importable classes)."""
    if cls.__module__ in _MAIN_MODULES:
        _known[cls.__qualname__] = cls


def resolve_class(module: str, qualname: str) -> type:
    """Return the class ``module.qualname``, from the module or the notebook classes met.

    Referenced by name from files that hold instances of notebook classes, so it must
    stay importable as ``datamultiproc.storage._classes.resolve_class``.

    Raises
    ------
    AttributeError
        If the class cannot be found (message starting "Can't get attribute").
    """
    for name in (module, *sorted(_MAIN_MODULES - {module})):
        found = _lookup(sys.modules.get(name), qualname)
        if isinstance(found, type):
            return found
    if qualname in _known:
        return _known[qualname]
    msg = f"Can't get attribute {qualname!r} on module {module!r} (a notebook class?)"
    raise AttributeError(msg)


class NotebookClassPickler(pickle.Pickler):
    """A pickler that writes notebook classes by name, through :func:`resolve_class`."""

    def reducer_override(self, obj: Any) -> Any:
        """Reduce notebook classes to a :func:`resolve_class` call; leave the rest to pickle."""
        if isinstance(obj, type) and obj.__module__ in _MAIN_MODULES:
            remember(obj)
            return resolve_class, (obj.__module__, obj.__qualname__)
        return NotImplemented


def load_with_notebook_classes(handle: IO[bytes]) -> Any:
    """Load a pickle, resolving ``__main__`` classes through :func:`resolve_class`."""
    return _Unpickler(handle).load()


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module in _MAIN_MODULES:
            return resolve_class(module, name)
        return super().find_class(module, name)


def _lookup(module: Any, qualname: str) -> Any:
    target = module
    for part in qualname.split("."):
        target = getattr(target, part, None)
    return target
