"""Writes the Save files in this folder with the real datamultiproc 0.1.3.

Run in a throwaway virtualenv that has the old release::

    python -m venv /tmp/old && /tmp/old/bin/pip install datamultiproc==0.1.3
    /tmp/old/bin/python tests/data/v0_1_3/make_files.py tests/data/v0_1_3

0.1.3 pickles ``sample.dict()`` (a plain dict, pydantic 1) to
``<dir>/<stage>/{id}_{stage}_.pickle``; numpy 1.26 wrote the arrays.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import numpy as np


def main(out: Path) -> None:
    from datamultiproc import BaseSample, Compose, Processor, Save

    class TileSample(BaseSample):
        size: int
        label: Optional[str] = None  # noqa: UP045 (pydantic 1 on old Pythons)
        pixels: np.ndarray
        features: dict[str, float] = {}  # noqa: RUF012 (a pydantic field)

    class Measure(Processor):
        scale: float = 1.0

        def process(self, sample: TileSample) -> TileSample:
            mean = float(sample.pixels.mean()) * self.scale
            sample.features = {"mean": mean, "max": float(sample.pixels.max())}
            return sample

    out.mkdir(parents=True, exist_ok=True)
    pipeline = Compose([Measure(scale=2.0), Save(save_to_dir=out)])
    for i in range(3):
        pixels = np.arange(4, dtype=np.uint8).reshape(2, 2) + i
        label = None if i == 1 else f"l{i}"
        pipeline(TileSample(id=f"tile-{i}", size=i + 1, label=label, pixels=pixels))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
