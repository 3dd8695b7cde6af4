"""A lazy input that hands consecutive samples one mutable object gets a warning.

Backends that read ahead (every one but sequential) would show the samples still
waiting only the object's last contents if the input refills it for every sample.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import datamultiproc
from datamultiproc import BaseSample, Processor
from datamultiproc.exceptions import ReusedInputWarning


class Frame(BaseSample):
    image: Any = None
    label: tuple[str, ...] = ()
    first: float = -1.0


class FirstPixel(Processor):
    def process(self, sample: Frame) -> Frame:
        sample.first = float(sample.image[0])
        return sample


def refilled(count: int) -> Iterator[Frame]:
    """Frames read into one buffer, as a video reader reusing its buffer would yield them."""
    buffer = np.zeros(16)
    for number in range(count):
        buffer[:] = number
        yield Frame(id=f"f{number}", image=buffer)


def fresh(count: int) -> Iterator[Frame]:
    for number in range(count):
        yield Frame(id=f"f{number}", image=np.full(16, float(number)), label=("same", "tuple"))


@pytest.mark.parametrize("backend", ["thread", pytest.param("process", marks=pytest.mark.slow)])
def test_a_generator_refilling_one_buffer_is_warned_about(backend: str) -> None:
    with pytest.warns(ReusedInputWarning, match=r"'f0' and 'f1' .* ndarray .*'image'") as caught:
        list(FirstPixel().imap(refilled(50), backend=backend, workers=2, progress=False))
    assert len([w for w in caught if w.category is ReusedInputWarning]) == 1  # once per run


def test_the_sequential_backend_copies_each_sample_before_reading_the_next() -> None:
    out = list(FirstPixel().imap(refilled(50), backend="sequential", progress=False))
    assert [s.first for s in out] == [float(n) for n in range(50)]  # and no warning


@pytest.mark.parametrize("backend", ["sequential", "thread"])
def test_inputs_sharing_nothing_mutable_get_no_warning(backend: str) -> None:
    out = list(FirstPixel().imap(fresh(300), backend=backend, workers=2, progress=False))
    assert [s.first for s in out] == [float(n) for n in range(300)]
    # A list of samples built around one array is sharing, not refilling: no warning.
    image = np.ones(16)
    listed = [Frame(id=f"v{n}", image=image) for n in range(20)]
    result = datamultiproc.run(FirstPixel(), listed, backend=backend, workers=2, progress=False)
    assert [s.first for s in result] == [1.0] * 20
