"""The state of a run as a progress display sees it: plain counts updated from events."""

from __future__ import annotations

import math
import time

from datamultiproc.execution import RunEvent, RunFinished, RunStarted, SampleFinished
from datamultiproc.notebook._tallies import StageTally, occurrence_keys

__all__ = ["ProgressState", "format_duration"]

_FINAL_WORDS = {
    "complete": "Complete",
    "complete_with_failures": "Complete with failures",
    "failed": "Failed",
    "interrupted": "Interrupted",
}


class ProgressState:
    """Counts of a run, updated one event at a time; knows nothing about displays.

    Examples
    --------
    >>> state = ProgressState()
    >>> state.update(RunStarted(total=10, stages=("Load",), backend="thread", workers=2))
    >>> state.done, state.total, list(state.stages)
    (0, 10, ['Load'])
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.total: int | None = None
        self.done = 0
        self.failed = 0
        self.backend = ""
        self.workers = 0
        self.stages: dict[str, StageTally] = {}
        self.started = time.monotonic()
        self.finished: RunFinished | None = None

    def update(self, event: RunEvent) -> None:
        """Apply one event."""
        if isinstance(event, SampleFinished):
            self._count_sample(event)
        elif isinstance(event, RunStarted):
            self._reset()  # a display reused for a second run starts afresh
            self.total, self.backend, self.workers = event.total, event.backend, event.workers
            self.stages = {key: StageTally() for key in occurrence_keys(event.stages)}
        elif isinstance(event, RunFinished):
            self.finished = event

    def _count_sample(self, event: SampleFinished) -> None:
        if event.failure is None:
            self.done += 1
        else:
            self.failed += 1
        steps = event.record.steps
        keys = occurrence_keys(step.stage for step in steps) if len(steps) > 1 else None
        for position, step in enumerate(steps):
            key = keys[position] if keys is not None else step.stage
            tally = self.stages.get(key)
            if tally is None:
                tally = self.stages[key] = StageTally()
            tally.add(step)

    @property
    def finished_samples(self) -> int:
        """Samples done or failed."""
        return self.done + self.failed

    @property
    def elapsed(self) -> float:
        """Seconds since the run started (until it finished, if it has)."""
        if self.finished is not None:
            return self.finished.seconds
        return time.monotonic() - self.started

    @property
    def rate(self) -> float:
        """Samples finished per second so far."""
        elapsed = self.elapsed
        return self.finished_samples / elapsed if elapsed > 0 else 0.0

    @property
    def seconds_left(self) -> float:
        """Estimated seconds to go; NaN while unknown (no total, or nothing finished yet)."""
        if self.total is None or not self.rate:
            return math.nan
        return max(self.total - self.finished_samples, 0) / self.rate

    def summary(self) -> str:
        """Return one line of text: counts, rate and time left, or the final state."""
        count = f"{self.finished_samples:,}"
        if self.total is not None:
            count += f"/{self.total:,}"
        parts = [f"{count} samples"]
        if self.failed:
            parts.append(f"{self.failed:,} failed")
        parts.append(f"{self.rate:,.1f} samples/s")
        if self.finished is not None:
            word = _FINAL_WORDS.get(self.finished.status, self.finished.status)
            parts.insert(0, word)
            parts.append(f"in {format_duration(self.elapsed)}")
        else:
            parts.append(f"{format_duration(self.elapsed)} elapsed")
            if not math.isnan(self.seconds_left):
                parts.append(f"{format_duration(self.seconds_left)} left")
        return " · ".join(parts)


def format_duration(seconds: float) -> str:
    """Format seconds as ``m:ss`` or ``h:mm:ss``.

    Examples
    --------
    >>> format_duration(5.4), format_duration(3725)
    ('0:05', '1:02:05')
    """
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
