"""Walk a pipeline: every step, nested ones included, with the steps that run before it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from datamultiproc.core._processor import Processor

__all__ = ["StepPosition", "walk"]


class StepPosition(NamedTuple):
    """One step of a pipeline and where it runs.

    Attributes
    ----------
    step
        The step: the pipeline itself, a step of a Compose, the processor a Cache wraps, ...
    upstream
        The steps that run before it, as the pipeline passes them on: a Compose adds each
        of its steps after running it; a step's first sub-step sees the step's own upstream.
    """

    step: Processor
    upstream: tuple[Processor, ...]


def walk(pipeline: Processor, upstream: tuple[Processor, ...] = ()) -> Iterator[StepPosition]:
    """Yield every step of ``pipeline``, depth first, each before its sub-steps.

    The one way to walk a pipeline: steps say what they hold with
    :meth:`Processor.substeps`, so no walker needs to know the step types.

    Parameters
    ----------
    pipeline
        A processor, a Compose, a Cache, ...
    upstream
        The steps that run before ``pipeline``.

    Examples
    --------
    >>> from datamultiproc.core._compose import Compose
    >>> def a(sample): return sample
    >>> def b(sample): return sample
    >>> [(p.step.stage_name, [u.stage_name for u in p.upstream]) for p in walk(Compose(a, b))]
    [('Compose', []), ('a', []), ('b', ['a'])]
    """
    yield StepPosition(pipeline, upstream)
    for step in pipeline.substeps():
        yield from walk(step, upstream)
        upstream = (*upstream, step)
