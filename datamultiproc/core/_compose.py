"""Compose: a chain of processors that is itself a processor."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from datamultiproc.core._processor import FunctionStep, Processor

__all__ = ["Compose"]


class Compose(Processor):
    """Chain processors; they run in the order given.

    Both ``Compose(p1, p2)`` and ``Compose([p1, p2])`` work, a Compose can hold
    another Compose, and plain functions ``f(sample) -> sample`` are accepted as
    steps. A Compose adds no history entry of its own: its steps do.

    Parameters
    ----------
    *steps
        Processors or callables, or one list or tuple of them.

    Raises
    ------
    ValueError
        If no step is given.
    TypeError
        If a step is not callable, or is a processor class instead of an instance.

    Examples
    --------
    >>> from datamultiproc.core._sample import BaseSample
    >>> class Sample(BaseSample):
    ...     data: int
    >>> class AddStep(Processor):
    ...     step_size: int = 1
    ...     def process(self, sample):
    ...         sample.data = sample.data + self.step_size
    ...         return sample
    >>> pipeline = Compose(AddStep(), AddStep(step_size=2))
    >>> pipeline
    Compose(AddStep(step_size=1), AddStep(step_size=2))
    >>> pipeline(Sample(id="a", data=0)).data
    3
    """

    steps: list[Processor]

    def __init__(self, *steps: Processor | Callable[[Any], Any] | Iterable[Any], **data: Any):
        if len(steps) == 1 and isinstance(steps[0], (list, tuple)):
            steps = tuple(steps[0])
        if steps and "steps" in data:
            msg = "pass the steps either positionally or as steps=, not both"
            raise TypeError(msg)
        raw_steps = list(steps) if steps else list(data.pop("steps", []))
        if not raw_steps:
            msg = "Compose needs at least one step"
            raise ValueError(msg)
        data["steps"] = [_as_step(index, step) for index, step in enumerate(raw_steps)]
        super().__init__(**data)

    def iter_processors(self) -> tuple[Processor, ...]:
        """Return the leaf processors in execution order, nested Composes flattened."""
        return tuple(leaf for step in self.steps for leaf in step.iter_processors())

    def substeps(self) -> tuple[Processor, ...]:
        """Return the steps, in order."""
        return tuple(self.steps)

    def process(self, sample: Any) -> Any:
        """Run every step on the sample."""
        return self._run_step(sample, ())

    def _run_step(self, sample: Any, upstream: tuple[Processor, ...]) -> Any:
        for step in self.steps:
            sample = step._run_step(sample, upstream)
            upstream = (*upstream, step)
        return sample

    def setup(self) -> None:
        """Set up every step."""
        for step in self.steps:
            step.setup()

    def __repr__(self) -> str:
        return f"Compose({', '.join(repr(step) for step in self.steps)})"

    def __str__(self) -> str:
        return repr(self)


def _as_step(index: int, step: object) -> Processor:
    if isinstance(step, Processor):
        return step
    if isinstance(step, type):
        msg = f"Compose step {index} is the class {step.__name__}; pass an instance, e.g. {step.__name__}()"
        raise TypeError(msg)
    if callable(step):
        return FunctionStep(function=step)
    msg = f"Compose step {index} is a {type(step).__name__} ({step!r:.60}), which is not a Processor or callable"
    raise TypeError(msg)
