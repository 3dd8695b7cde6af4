"""Every example of the original design document runs against the package.

The snippets are copied from ``shared/seed/datamultiproc-README.md``; the only
changes are the documented typo (``sample.date`` for ``sample.data``) and
placeholders (``samples = [...]``) filled with real samples.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from datamultiproc import BaseSample, Cache, Compose, Processor, Save


def test_sample_snippet() -> None:

    class CustomSample(BaseSample):
        data: int
        optional_data: str | None = None
        array: np.ndarray

    sample = CustomSample(id="a", data=1, array=np.zeros(3))
    assert sample.processing_history == []
    assert sample.optional_data is None
    assert list(BaseSample.model_fields) == ["processing_history", "id"]


class CustomSample(BaseSample):
    data: int


class NoArgProcessor(Processor):
    def process(self, sample: CustomSample) -> CustomSample:
        # do something with sample, e.g.
        sample.data = sample.data + 1
        return sample


class CustomProcessor(Processor):
    step_size: int = 1
    _hidden_arg: int = 1

    def process(self, sample: CustomSample) -> CustomSample:
        # do something with sample, e.g.
        sample.data = sample.data + self.step_size + self._hidden_arg
        return sample


def test_processor_snippets() -> None:
    assert NoArgProcessor()(CustomSample(id="a", data=1)).data == 2
    assert CustomProcessor(step_size=2)(CustomSample(id="a", data=1)).data == 4


def test_compose_snippet() -> None:
    process = Compose(
        CustomProcessor(),
        CustomProcessor(step_size=2),
        CustomProcessor(step_size=3),
    )

    samples = [CustomSample(id=str(i), data=i) for i in range(5)]

    processed_samples = [process(s) for s in samples]
    assert [s.data for s in processed_samples] == [i + 2 + 3 + 4 for i in range(5)]
    assert processed_samples[0].processing_history == [
        ("CustomProcessor", "step_size=1"),
        ("CustomProcessor", "step_size=2"),
        ("CustomProcessor", "step_size=3"),
    ]


@pytest.mark.parametrize("as_path", [False, True])
def test_cache_and_save_snippet(tmp_path: Path, as_path: bool) -> None:
    cache_dir = tmp_path / "path/to/cache"
    save_dir = tmp_path / "path/to/save"
    process = Compose(
        Cache(processor=CustomProcessor(), cache_dir=cache_dir if as_path else str(cache_dir)),
        CustomProcessor(step_size=2),
        CustomProcessor(step_size=3),
        Save(save_to_dir=save_dir if as_path else str(save_dir)),
    )
    results = [process(CustomSample(id=f"s{i}", data=i)) for i in range(3)]
    assert [s.data for s in results] == [i + 2 + 3 + 4 for i in range(3)]
    assert len(list((cache_dir / "CustomProcessor").rglob("*.pickle"))) == 3
    assert len(list((save_dir / "CustomProcessor").rglob("*.pickle"))) == 3


class CountingSlowStep(Processor):
    """Sleeps like an expensive step and counts its calls (class-level, this process only)."""

    calls: ClassVar[int] = 0

    def process(self, sample: CustomSample) -> CustomSample:
        type(self).calls += 1
        time.sleep(0.2)
        sample.data = sample.data + 1
        return sample


def test_cache_rerun_skips_the_expensive_step(tmp_path: Path) -> None:
    process = Compose(Cache(processor=CountingSlowStep(), cache_dir=tmp_path), NoArgProcessor())
    CountingSlowStep.calls = 0
    first = [process(CustomSample(id=f"s{i}", data=i)) for i in range(3)]
    assert CountingSlowStep.calls == 3
    rerun = [process(CustomSample(id=f"s{i}", data=i)) for i in range(3)]
    assert CountingSlowStep.calls == 3  # loaded, not recomputed: no sleep at all
    assert [s.data for s in rerun] == [s.data for s in first] == [2, 3, 4]
    assert rerun[0].processing_history == [("CountingSlowStep", ""), ("NoArgProcessor", "")]
