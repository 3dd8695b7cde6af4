"""RunIterator: what imap() returns; and warnings that point at the user's line."""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from datamultiproc.core import FailureRecord

if TYPE_CHECKING:
    from datamultiproc.execution._events import RunStatus

__all__ = ["RunIterator", "warn_at_caller"]

SampleT = TypeVar("SampleT")

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


class RunIterator(Iterator[SampleT], Generic[SampleT]):
    """The processed samples of :func:`~datamultiproc.execution.imap`, and what failed.

    Iterate it like any iterator. Once it is exhausted (or closed), :attr:`failures`
    holds the failed samples' records and :attr:`status` how the run ended; while it
    runs they show the failures so far and ``"running"``.

    Examples
    --------
    >>> from datamultiproc import BaseSample, Processor
    >>> class Sample(BaseSample):
    ...     data: int
    >>> class Invert(Processor):
    ...     def process(self, sample):
    ...         sample.data = 1 // sample.data
    ...         return sample
    >>> samples = [Sample(id="a", data=1), Sample(id="b", data=0)]
    >>> it = Invert().imap(samples, backend="sequential", progress=False, on_error="skip")
    >>> [s.id for s in it], [f.sample_id for f in it.failures], it.status
    (['a'], ['b'], 'complete_with_failures')
    """

    def __init__(self, samples: Iterator[SampleT], session: Any) -> None:
        self._samples = samples
        self._session = session
        self._done = False

    def __iter__(self) -> RunIterator[SampleT]:
        return self

    def __next__(self) -> SampleT:
        try:
            return next(self._samples)
        except StopIteration:
            self._done = True
            raise

    def close(self) -> None:
        """Stop the run early (as leaving a ``for`` loop and dropping the iterator does)."""
        close = getattr(self._samples, "close", None)
        if close is not None:
            close()
        self._done = True

    @property
    def failures(self) -> list[FailureRecord]:
        """One record per failed sample so far, in input order."""
        return sorted(self._session.failures, key=lambda failure: failure.index)

    @property
    def status(self) -> RunStatus | str:
        """``"running"`` until exhausted or closed, then as :attr:`RunResult.status`."""
        return self._session.status if self._done else "running"


def warn_at_caller(message: str, category: type[Warning]) -> None:
    """Warn, attributing the warning to the first caller outside this package.

    So a warning raised deep in a run points at the user's ``run(...)`` call or
    ``for`` loop, not at the library's code.
    """
    frame = sys._getframe(0)
    level = 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)
