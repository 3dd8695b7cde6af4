"""Sample and processor types shared by tests; importable, so spawn workers find them."""

from __future__ import annotations

import time

import numpy as np

from datamultiproc import BaseSample, Processor


class NumberSample(BaseSample):
    data: int
    optional_data: str | None = None


class ArraySample(BaseSample):
    data: int = 0
    array: np.ndarray


class AddStep(Processor):
    step_size: int = 1

    def process(self, sample: NumberSample) -> NumberSample:
        sample.data = sample.data + self.step_size
        return sample


class DoubleStep(Processor):
    def process(self, sample: NumberSample) -> NumberSample:
        sample.data = sample.data * 2
        return sample


class SlowStep(Processor):
    seconds: float = 0.2

    def process(self, sample: NumberSample) -> NumberSample:
        time.sleep(self.seconds)
        sample.data = sample.data + 1
        return sample


class FailOn(Processor):
    """Raises ValueError for the listed ids."""

    ids: list[str]

    def process(self, sample: NumberSample) -> NumberSample:
        if sample.id in self.ids:
            msg = f"bad sample {sample.id}"
            raise ValueError(msg)
        return sample


class ReturnsNone(Processor):
    def process(self, sample: NumberSample) -> None:
        sample.data = 0


def number_samples(count: int, *, prefix: str = "s") -> list[NumberSample]:
    return [NumberSample(id=f"{prefix}{index}", data=index) for index in range(count)]
