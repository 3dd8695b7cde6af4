"""Registers the notebook layer's pandas tables with core, lazily.

``import datamultiproc`` calls :func:`connect_tables`: core's
:meth:`BaseSample.from_frame`, ``RunResult.to_frame()`` and the collections of
:func:`datamultiproc.load_saved` then reach :mod:`datamultiproc.notebook._tables`,
which (and pandas) is imported only when a table is first read or made.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from datamultiproc.core._tables import FrameColumns, TableService, register_table_service

__all__ = ["connect_tables"]


def connect_tables() -> None:
    """Register the pandas table service with core."""
    register_table_service(
        TableService(read_frame=_read_frame, samples_frame=_samples_frame, history_frame=_history)
    )


def _read_frame(frame: Any, none_columns: frozenset[str]) -> FrameColumns:
    from datamultiproc.notebook import _tables

    return _tables.read_frame(frame, none_columns)


def _samples_frame(samples: Iterable[Any], **options: Any) -> Any:
    from datamultiproc.notebook import _tables

    return _tables.samples_frame(samples, **options)


def _history(samples: Iterable[Any]) -> Any:
    from datamultiproc.notebook import _frames

    return _frames.history_frame(samples)
