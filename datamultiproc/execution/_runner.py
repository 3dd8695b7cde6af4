"""run(): execute a pipeline over many samples (placeholder; the runner issue fills it in)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from datamultiproc.core import BaseSample, Processor
from datamultiproc.execution._result import RunResult

__all__ = ["run"]


def run(pipeline: Processor, samples: Iterable[BaseSample], **options: Any) -> RunResult[Any]:
    """Run ``pipeline`` over ``samples``."""
    raise NotImplementedError
