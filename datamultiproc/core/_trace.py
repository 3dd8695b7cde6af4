"""Trace: one sample run stage by stage in this process, with a snapshot after each stage.

:meth:`Processor.trace` walks the pipeline's leaf steps in order and calls each
step's ``_trace_step`` hook, which runs the step without writing anything: the
default runs the step as usual; storage steps override it (a Cache loads a hit and
computes a miss without storing it, a Save passes the sample on unsaved).
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from datamultiproc.core._processor import Processor
from datamultiproc.core._sample import BaseSample, values_equal
from datamultiproc.core._services import trace_frame
from datamultiproc.exceptions import ProcessingError

if TYPE_CHECKING:
    import pandas as pd  # noqa: TID251 (type hints only)

__all__ = ["Trace", "TraceStep", "leaf_steps", "trace"]


@dataclass(frozen=True)
class TraceStep:
    """One stage of a :class:`Trace`.

    Attributes
    ----------
    stage
        The stage name.
    sample
        A copy of the sample as it was after the stage.
    seconds
        Time the stage took (for a cache hit, the time to load the entry).
    cache
        ``"hit"``, ``"miss: <reason>"`` (the reason as in step records, e.g.
        ``"miss: new sample"`` or ``"miss: parameter size 3 -> 5"``), or ``"-"`` for a
        step that is not a Cache.
    changed
        Names of the fields the stage changed (``processing_history`` left out).
    """

    stage: str
    sample: BaseSample
    seconds: float
    cache: str
    changed: tuple[str, ...]


@dataclass
class Trace:
    """One sample's way through a pipeline; see :meth:`Processor.trace`.

    A trace never raises for a failing stage: it stops there, keeps the stages
    before it, and holds the exception in :attr:`error` with its formatted
    traceback in :attr:`traceback`.

    Attributes
    ----------
    input
        A copy of the sample as it went in.
    steps
        One :class:`TraceStep` per stage that finished, in order.
    error
        The exception the failing stage raised (the processor's own, not the
        :class:`~datamultiproc.ProcessingError` wrapping it), or ``None``.
    failed_stage
        The stage that raised, or ``None``.
    traceback
        The formatted traceback of :attr:`error`, or ``""``.
    stages
        Every leaf stage of the pipeline, including those not reached.
    """

    input: BaseSample
    steps: list[TraceStep] = field(default_factory=list)
    error: BaseException | None = None
    failed_stage: str | None = None
    traceback: str = ""
    stages: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether every stage ran."""
        return self.error is None

    @property
    def output(self) -> BaseSample:
        """The sample after the last stage that ran (the input if none did)."""
        return self.steps[-1].sample if self.steps else self.input

    def __getitem__(self, key: int | str) -> BaseSample:
        """Return the snapshot after stage ``key``: a position, or a stage name (its first use)."""
        return self.step(key).sample

    def step(self, key: int | str) -> TraceStep:
        """Return the :class:`TraceStep` at a position or of a stage name (its first use).

        Raises
        ------
        KeyError
            If no stage that ran has that name; the message lists those that did.
        TypeError
            If ``key`` is neither an int nor a str.
        """
        if isinstance(key, bool) or not isinstance(key, (int, str)):
            msg = f"key must be a stage position (int) or a stage name (str), not {key!r}"
            raise TypeError(msg)
        if isinstance(key, int):
            return self.steps[key]
        for entry in self.steps:
            if entry.stage == key:
                return entry
        ran = ", ".join(repr(entry.stage) for entry in self.steps) or "none"
        msg = f"no stage {key!r} in this trace; stages that ran: {ran}"
        raise KeyError(msg)

    def __len__(self) -> int:
        return len(self.steps)

    def __iter__(self) -> Iterator[TraceStep]:
        return iter(self.steps)

    def to_frame(self) -> pd.DataFrame:
        """Return one row per stage: ``stage``, ``seconds``, ``cache``, ``changed``.

        A failed stage gets a last row with ``cache`` ``"-"`` and the error in ``changed``.
        Imports pandas on first use.
        """
        frame: pd.DataFrame = trace_frame()(self)
        return frame

    def __repr__(self) -> str:
        done = ", ".join(f"{entry.stage} ({entry.cache})" for entry in self.steps)
        tail = (
            f"; failed in {self.failed_stage}: {type(self.error).__name__}: {self.error}"
            if self.error is not None
            else ""
        )
        return f"Trace({getattr(self.input, 'id', None)!r}: {done or 'no stage ran'}{tail})"

    def _repr_html_(self) -> str:
        from datamultiproc.core._trace_html import trace_html

        return trace_html(self)


def leaf_steps(
    step: Processor, upstream: tuple[Processor, ...] = ()
) -> Iterator[tuple[Processor, tuple[Processor, ...]]]:
    """Yield each leaf step (as :meth:`Processor.iter_processors` counts them) with its upstream.

    The upstream steps are those that run before it, as :func:`~datamultiproc.core.walk`
    gives them; a Cache is one leaf (its wrapped processor runs inside it).
    """
    leaves = step.iter_processors()
    if len(leaves) == 1 and leaves[0] is step:
        yield step, upstream
        return
    for inner in step.substeps():
        yield from leaf_steps(inner, upstream)
        upstream = (*upstream, inner)


def trace(pipeline: Processor, sample: BaseSample) -> Trace:
    """Run ``sample`` through ``pipeline`` stage by stage; see :meth:`Processor.trace`."""
    current = sample.model_copy(deep=True)
    leaves = list(leaf_steps(pipeline))
    result = Trace(
        input=sample.model_copy(deep=True), stages=tuple(s.stage_name for s, _ in leaves)
    )
    try:
        pipeline.setup()  # as a sequential run does, before its first sample
    except Exception as exc:
        _record_error(result, "setup", exc)
        return result
    for leaf, upstream in leaves:
        before = result.output
        started = time.perf_counter()
        try:
            current, cache = leaf._trace_step(current, upstream)
        except Exception as exc:
            _record_error(result, leaf.stage_name, exc)
            return result
        seconds = time.perf_counter() - started
        snapshot = current.model_copy(deep=True)
        result.steps.append(
            TraceStep(leaf.stage_name, snapshot, seconds, cache, changed_fields(before, snapshot))
        )
    return result


def changed_fields(before: BaseSample, after: BaseSample) -> tuple[str, ...]:
    """Return the fields whose values differ (``processing_history`` left out)."""
    names = dict.fromkeys([*type(before).model_fields, *type(after).model_fields])
    missing = object()
    return tuple(
        name
        for name in names
        if name != "processing_history"
        and not values_equal(getattr(before, name, missing), getattr(after, name, missing))
    )


def _record_error(result: Trace, stage: str, exc: Exception) -> None:
    original: BaseException = exc
    if isinstance(exc, ProcessingError) and exc.__cause__ is not None:
        original = exc.__cause__
    result.error = original
    result.failed_stage = stage
    # Leave out the library's own frames above the processor's code.
    frames = original.__traceback__
    while frames is not None and frames.tb_frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frames = frames.tb_next
    result.traceback = "".join(
        traceback.format_exception(type(original), original, frames or original.__traceback__)
    )


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
