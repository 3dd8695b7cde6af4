"""Services that execution offers but a higher layer implements, registered at package import.

Execution imports nothing above it. Two things it shows are drawn by
:mod:`datamultiproc.notebook`, which alone imports ipywidgets and pandas: the
progress display of ``run(progress=True)`` and the DataFrame views of
:class:`~datamultiproc.execution.RunResult`. ``import datamultiproc`` registers
factories for both that import the notebook layer only when first called, so
importing the package stays light.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from datamultiproc.core._services import Slot
from datamultiproc.execution._events import ProgressSink

if TYPE_CHECKING:
    import pandas as pd  # noqa: TID251 (type hints only)

__all__ = [
    "DisplayFactory",
    "DisplayMode",
    "ResultViews",
    "create_display",
    "register_display_factory",
    "register_result_views",
    "result_views",
]

DisplayMode = Literal["auto", "widget", "text"]


class DisplayFactory(Protocol):
    """Makes the progress display of a run: ``factory(mode, stop=event)``."""

    def __call__(self, mode: DisplayMode, *, stop: threading.Event) -> ProgressSink:
        """Return a sink for ``mode``; setting ``stop`` (a Stop button) stops the run."""
        ...


@dataclass(frozen=True)
class ResultViews:
    """The views of a run result.

    DataFrames, each ``view(result) -> pandas.DataFrame``, and ``browse(result)``,
    an ipywidgets browser.
    """

    history: Callable[[Any], pd.DataFrame]
    cache_stats: Callable[[Any], pd.DataFrame]
    timings: Callable[[Any], pd.DataFrame]
    failures_frame: Callable[[Any], pd.DataFrame]
    browse: Callable[[Any], Any]


_display: Slot[DisplayFactory] = Slot(
    "no progress display registered: import datamultiproc, or pass progress=False or a ProgressSink"
)
_views: Slot[ResultViews] = Slot(
    "no DataFrame views registered: import datamultiproc (it registers pandas views)"
)


def register_display_factory(factory: DisplayFactory) -> None:
    """Make ``factory`` create the displays of ``progress=True``/``"auto"``/``"widget"``/``"text"``."""
    _display.set(factory)


def create_display(mode: DisplayMode, *, stop: threading.Event) -> ProgressSink:
    """Return a display from the registered factory.

    Raises
    ------
    ExecutionError
        If no factory was registered.
    """
    return _display.get()(mode, stop=stop)


def register_result_views(views: ResultViews) -> None:
    """Make ``views`` implement ``RunResult.history()``, ``cache_stats()`` and the others."""
    _views.set(views)


def result_views() -> ResultViews:
    """Return the registered views.

    Raises
    ------
    ExecutionError
        If none were registered.
    """
    return _views.get()
