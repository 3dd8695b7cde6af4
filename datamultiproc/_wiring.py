"""Connects the layers: the services a lower layer offers and a higher one implements.

``import datamultiproc`` runs :func:`connect_layers` once. Execution registered its
runner with core when it was imported; here the notebook layer's progress displays
and ``RunResult`` DataFrame views are registered with execution (and the
``Plan`` DataFrame view with storage, the ``Trace`` one and the pandas tables,
DataFrames to samples and back, with core), as factories that import
:mod:`datamultiproc.notebook` (and pandas or ipywidgets) only when first used.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from datamultiproc.core import Trace
from datamultiproc.core._services import (
    TableService,
    register_table_service,
    register_trace_frame,
)
from datamultiproc.core._tables import FrameColumns
from datamultiproc.execution import ProgressSink, RunResult
from datamultiproc.execution._services import (
    DisplayMode,
    ResultViews,
    register_display_factory,
    register_result_views,
)
from datamultiproc.storage import Plan, register_plan_frame, register_value_hasher

if TYPE_CHECKING:
    import pandas as pd  # noqa: TID251 (type hints only)

__all__ = ["connect_layers"]


def connect_layers() -> None:
    """Register the notebook layer's displays and views with the lower layers.

    Also registers with storage the cache-key hasher for pandas values, which
    imports the notebook layer only when a pandas value is keyed.
    """
    register_value_hasher("pandas", _pandas_content)
    register_trace_frame(_trace_frame)
    register_table_service(
        TableService(read_frame=_read_frame, samples_frame=_samples_frame, history_frame=_history)
    )
    register_display_factory(_create_display)
    register_plan_frame(_plan_frame)
    register_result_views(
        ResultViews(
            history=_view("result_history_frame"),
            cache_stats=_view("result_cache_stats_frame"),
            timings=_view("result_timings_frame"),
            failures_frame=_view("result_failures_frame"),
            browse=_browse,
        )
    )


def _plan_frame(plan: Plan) -> pd.DataFrame:
    from datamultiproc.notebook import _frames

    return _frames.plan_frame(plan)


def _browse(result: RunResult[Any]) -> Any:
    from datamultiproc.notebook import _browse

    return _browse.browse(result)


def _trace_frame(trace: Trace) -> pd.DataFrame:
    from datamultiproc.notebook import _trace

    return _trace.trace_frame(trace)


def _pandas_content(value: Any) -> bytes:
    from datamultiproc.notebook import _hashing

    return _hashing.pandas_content(value)


def _create_display(mode: DisplayMode, *, stop: threading.Event) -> ProgressSink:
    from datamultiproc.notebook import _progress

    return _progress.create_progress_sink(mode, stop=stop)


def _view(name: str) -> Callable[[RunResult[Any]], pd.DataFrame]:
    def view(result: RunResult[Any]) -> pd.DataFrame:
        from datamultiproc.notebook import _frames

        frame: pd.DataFrame = getattr(_frames, name)(result)
        return frame

    view.__name__ = name
    return view


def _read_frame(frame: Any, none_columns: frozenset[str]) -> FrameColumns:
    from datamultiproc.notebook import _tables

    return _tables.read_frame(frame, none_columns)


def _samples_frame(samples: Iterable[Any], **options: Any) -> pd.DataFrame:
    from datamultiproc.notebook import _tables

    return _tables.samples_frame(samples, **options)


def _history(samples: Iterable[Any]) -> pd.DataFrame:
    from datamultiproc.notebook import _frames

    return _frames.history_frame(samples)
