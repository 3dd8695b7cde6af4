"""The DataFrame view of a Trace (registered with core as ``Trace.to_frame``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd  # noqa: TID251 (type hints only)

    from datamultiproc.core import Trace

__all__ = ["trace_frame"]


def trace_frame(trace: Trace) -> pd.DataFrame:
    """Return one row per stage of a trace: ``stage``, ``seconds``, ``cache``, ``changed``.

    ``changed`` names the fields the stage changed, comma-separated. If a stage
    failed, a last row names it, with NaN seconds and ``"error: Type: message"``
    in ``changed``.

    Examples
    --------
    >>> from datamultiproc import BaseSample, Processor
    >>> class Sample(BaseSample):
    ...     data: int
    >>> class AddOne(Processor):
    ...     def process(self, sample):
    ...         sample.data += 1
    ...         return sample
    >>> trace_frame(AddOne().trace(Sample(id="a", data=1)))[["stage", "cache", "changed"]]
        stage cache changed
    0  AddOne     -    data
    """
    import pandas as pd  # noqa: TID251 (the notebook layer imports pandas)

    rows = [(step.stage, step.seconds, step.cache, ", ".join(step.changed)) for step in trace]
    if trace.error is not None:
        error = f"error: {type(trace.error).__name__}: {trace.error}"
        rows.append((trace.failed_stage or "", float("nan"), "-", error))
    frame = pd.DataFrame(rows, columns=["stage", "seconds", "cache", "changed"])
    return frame.astype({"stage": "str", "seconds": "float64", "cache": "str", "changed": "str"})
