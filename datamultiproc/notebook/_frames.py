"""pandas views of run records (placeholder; the notebook layer fills it in)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "history_frame",
    "result_cache_stats_frame",
    "result_failures_frame",
    "result_history_frame",
    "result_timings_frame",
]


def _todo(*_: Any) -> pd.DataFrame:
    msg = "not implemented yet"
    raise NotImplementedError(msg)


history_frame = result_history_frame = result_cache_stats_frame = _todo
result_timings_frame = result_failures_frame = _todo
