"""Progress displays (placeholder: a tqdm bar; the notebook layer adds the widget)."""

from __future__ import annotations

import threading
from typing import Literal

from datamultiproc.execution import ProgressSink, RunEvent, RunFinished, RunStarted, SampleFinished

__all__ = ["create_progress_sink"]


class _TextProgress:
    def __init__(self) -> None:
        self._bar: object = None

    def handle(self, event: RunEvent) -> None:
        from tqdm.auto import tqdm

        if isinstance(event, RunStarted):
            self._bar = tqdm(total=event.total, unit="sample")
        elif isinstance(event, SampleFinished) and self._bar is not None:
            self._bar.update(1)  # type: ignore[attr-defined]
        elif isinstance(event, RunFinished) and self._bar is not None:
            self._bar.close()  # type: ignore[attr-defined]


def create_progress_sink(
    mode: Literal["auto", "widget", "text"] = "auto", *, stop: threading.Event | None = None
) -> ProgressSink:
    """Return a progress display for ``mode``; ``stop`` is set when the user asks to stop."""
    return _TextProgress()
