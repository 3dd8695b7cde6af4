"""Notebook features: live progress displays and pandas views of a run.

This is the only layer that imports pandas, ipywidgets and IPython, and only when
a display or a frame is created, so importing it stays cheap. ``RunResult``'s view
methods (``history()``, ``cache_stats()``, ``timings()``, ``failures_frame()``,
``browse()``), ``Trace.to_frame()`` and :func:`datamultiproc.history_frame` call into it.
"""

from datamultiproc.notebook._frames import (
    history_frame,
    result_cache_stats_frame,
    result_failures_frame,
    result_history_frame,
    result_timings_frame,
)
from datamultiproc.notebook._progress import (
    TextProgress,
    WidgetProgress,
    create_progress_sink,
    in_jupyter_kernel,
)

__all__ = [
    "TextProgress",
    "WidgetProgress",
    "create_progress_sink",
    "history_frame",
    "in_jupyter_kernel",
    "result_cache_stats_frame",
    "result_failures_frame",
    "result_history_frame",
    "result_timings_frame",
]

for _name in __all__:
    globals()[_name].__module__ = "datamultiproc.notebook"
del _name
