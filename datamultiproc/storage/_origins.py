"""Where a module comes from: the user's own code, the standard library, or a distribution.

The cache key follows code into the user's own modules (files beside the notebook,
notebook cells, an editable install of the user's project) and keys everything else
by where it comes from: the standard library and datamultiproc by name only, an
installed third-party distribution by its name and version, so upgrading it reruns
the steps that use it. Lookups are cached per top-level package and process.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import re
import sys
from typing import Literal, NamedTuple

__all__ = ["Origin", "module_origin"]

_MAIN_MODULES = frozenset({"__main__", "__mp_main__", "__notebook__"})
_LIBRARY = frozenset({"datamultiproc"})


class Origin(NamedTuple):
    """Where a module comes from.

    Attributes
    ----------
    kind
        ``"user"`` (followed into), ``"stdlib"``, ``"library"`` (datamultiproc itself) or
        ``"distribution"`` (keyed by ``distribution`` and ``version``).
    distribution
        The distribution's name, for ``"distribution"``.
    version
        Its version, for ``"distribution"``.
    """

    kind: Literal["user", "stdlib", "library", "distribution"]
    distribution: str = ""
    version: str = ""


def module_origin(module: str | None) -> Origin:
    """Return where the module named ``module`` comes from.

    Examples
    --------
    >>> module_origin("__main__").kind, module_origin("json.decoder").kind
    ('user', 'stdlib')
    >>> module_origin("numpy").distribution
    'numpy'
    """
    top = (module or "__main__").partition(".")[0]
    return _top_level_origin(top)


@functools.cache
def _top_level_origin(top: str) -> Origin:
    if top in _MAIN_MODULES or top.startswith(("_ipython", "<")):
        return Origin("user")
    if top in sys.stdlib_module_names or top in sys.builtin_module_names or top == "builtins":
        return Origin("stdlib")
    if top in _LIBRARY:
        return Origin("library")
    if _outside_installed_packages(top):
        # A file of the user's own (beside the notebook, or an editable install of their
        # project): no need to list every installed distribution (a third of a second).
        return Origin("user")
    name = _same_name_distribution(top)
    if name is None:
        names = _distributions().get(top)
        if not names:
            return _unmapped(top)
        name = sorted(names)[0]
    if _is_editable(name):
        return Origin("user")  # the user's own project, installed with `pip install -e`
    return Origin("distribution", name, importlib.metadata.version(name))


def _same_name_distribution(top: str) -> str | None:
    # Most packages are installed by a distribution of the same name (numpy, pandas): a
    # quick lookup, instead of listing every installed distribution (a fifth of a second).
    try:
        distribution = importlib.metadata.distribution(top)
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return None
    top_level = distribution.read_text("top_level.txt")
    if top_level is not None and top not in top_level.split():
        return None
    return str(distribution.metadata["Name"])


def _unmapped(top: str) -> Origin:
    # Not installed by a distribution: the user's file, unless it sits in site-packages.
    module = sys.modules.get(top)
    path = _module_file(top)
    if _INSTALLED.search(path):
        return Origin("distribution", top, str(getattr(module, "__version__", "unknown")))
    return Origin("user")


_INSTALLED = re.compile(r"[/\\](site|dist)-packages[/\\]")


def _module_file(top: str) -> str:
    return str(getattr(sys.modules.get(top), "__file__", None) or "")


def _outside_installed_packages(top: str) -> bool:
    """Whether ``top`` is loaded from a file outside every site-packages folder."""
    path = _module_file(top)
    return bool(path) and not _INSTALLED.search(path)


@functools.lru_cache(maxsize=1)
def _distributions() -> dict[str, list[str]]:
    return dict(importlib.metadata.packages_distributions())


def _is_editable(name: str) -> bool:
    try:
        text = importlib.metadata.distribution(name).read_text("direct_url.json")
        return bool(text and json.loads(text).get("dir_info", {}).get("editable"))
    except (importlib.metadata.PackageNotFoundError, ValueError, AttributeError):
        return False
