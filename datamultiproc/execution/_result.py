"""RunResult: what a run produced, as plain records."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from datamultiproc.core import BaseSample, FailureRecord, SampleRecord
from datamultiproc.execution._events import RunStatus
from datamultiproc.execution._options import RunOptions
from datamultiproc.execution._repr import result_html, result_text
from datamultiproc.execution._services import result_views

if TYPE_CHECKING:
    import pandas as pd  # noqa: TID251 (type hints only)

__all__ = ["RunResult"]

SampleT = TypeVar("SampleT", bound=BaseSample)


@dataclass
class RunResult(Generic[SampleT]):
    """The outcome of :func:`datamultiproc.run`.

    Iterating a RunResult yields the processed samples in input order.

    Attributes
    ----------
    samples
        Processed samples in input order; failed samples are left out.
    failures
        One record per failed sample, in input order.
    records
        One record per sample (succeeded or failed) with its steps and worker,
        in input order.
    status
        ``"complete"`` (every sample succeeded), ``"complete_with_failures"`` (every
        sample ran and some failed: see :attr:`failures`) or ``"interrupted"`` (stopped
        early: what finished is here). A run that raises returns no result.
    wall_seconds
        Wall time of the run, worker start-up included.
    backend
        Name of the backend that ran it.
    workers
        Number of workers used.
    options
        The run's options as given (``None`` for a result made by hand).
    """

    samples: list[SampleT] = field(default_factory=list)
    failures: list[FailureRecord] = field(default_factory=list)
    records: list[SampleRecord] = field(default_factory=list)
    status: RunStatus = "complete"
    wall_seconds: float = 0.0
    backend: str = "sequential"
    workers: int = 1
    options: RunOptions | None = None

    @property
    def n_ok(self) -> int:
        """Number of samples that succeeded."""
        return len(self.samples)

    @property
    def n_failed(self) -> int:
        """Number of samples that failed."""
        return len(self.failures)

    @property
    def n_total(self) -> int:
        """Number of samples that finished, successfully or not."""
        return self.n_ok + self.n_failed

    def __iter__(self) -> Iterator[SampleT]:
        return iter(self.samples)

    def __len__(self) -> int:
        return len(self.samples)

    # DataFrame views: datamultiproc.notebook registers them (execution._services); pandas
    # is imported only when one is asked for.

    def to_frame(
        self, *, arrays: Literal["cells", "summary"] = "cells", include_failures: bool = False
    ) -> pd.DataFrame:
        """Return one row per processed sample, indexed by id, with a column per field.

        See :func:`datamultiproc.samples_frame` for the columns.

        Parameters
        ----------
        arrays
            ``"cells"`` (default) keeps numpy arrays as cells; ``"summary"`` replaces
            each by ``<field>.shape``, ``.dtype``, ``.min``, ``.max`` and ``.mean`` columns.
        include_failures
            Also give failed samples a row (their fields empty), in input order,
            with a ``status`` column (``"ok"``/``"failed"``) and an ``error`` column
            (``"ErrorType: message"``), so the frame merges with the input table.
            Raises ``ValueError`` if the samples have a field named ``status`` or
            ``error`` (rather than hide it): use :meth:`failures_frame` then.

        Returns
        -------
        pandas.DataFrame
            Imports pandas on first use.
        """
        from datamultiproc.core._services import table_service

        frame: pd.DataFrame
        if not include_failures:
            frame = table_service().samples_frame(self.samples, arrays=arrays)
            return frame
        failures = [(f.sample_id, f"{f.error_type}: {f.message}") for f in self.failures]
        ok = [record.index for record in self.records if record.status == "ok"]
        order = ok + [f.index for f in self.failures] if len(ok) == len(self.samples) else None
        frame = table_service().samples_frame(
            self.samples, arrays=arrays, failures=failures, order=order
        )
        return frame

    def history(self) -> pd.DataFrame:
        """Return one row per sample and step; see :func:`datamultiproc.notebook.history_frame`."""
        return result_views().history(self)

    def cache_stats(self) -> pd.DataFrame:
        """Return one row per cached stage with hits, misses, hit rate and bytes, for this run only.

        ``cache.stats`` on a :class:`~datamultiproc.Cache` instead adds up every run
        of that Cache object in this process.
        """
        return result_views().cache_stats(self)

    def timings(self) -> pd.DataFrame:
        """Return one row per stage with count, total, mean, median and p95 seconds."""
        return result_views().timings(self)

    def failures_frame(self) -> pd.DataFrame:
        """Return one row per failed sample with its stage, error and traceback."""
        return result_views().failures_frame(self)

    def browse(self) -> Any:
        """Browse the samples and failures in a notebook: pick one, see it and its steps.

        Returns an ipywidgets browser: filter by ok / failed, pick a sample by
        position or id, and see its display and steps, or for a failure its stage,
        message and worker traceback.

        Raises
        ------
        RuntimeError
            Outside a Jupyter kernel; use ``result.samples[i]``, ``result.failures``
            or ``result.failures_frame()`` there.
        """
        return result_views().browse(self)

    def __repr__(self) -> str:
        return result_text(self)

    def _repr_html_(self) -> str:
        return result_html(self)
