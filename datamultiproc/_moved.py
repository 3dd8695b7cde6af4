"""Old module paths of datamultiproc 0.1.3 that keep working, with a DeprecationWarning."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from typing import Any

__all__ = ["moved_names"]


def moved_names(module: str, names: dict[str, str]) -> Callable[[str], Any]:
    """Return a module ``__getattr__`` serving ``names`` (name -> new module) with a warning."""

    def __getattr__(name: str) -> Any:
        if name not in names:
            msg = (
                f"module {module!r} has no attribute {name!r}; {module} is the deprecated "
                f"0.1.3 path of {', '.join(sorted(names))}: import from datamultiproc instead"
            )
            raise AttributeError(msg)
        new = names[name]
        message = (
            f"{module} is deprecated since datamultiproc 0.2.0 and will be removed: "
            f"use `from {new} import {name}`"
        )
        warnings.warn(message, DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(new), name)

    return __getattr__
