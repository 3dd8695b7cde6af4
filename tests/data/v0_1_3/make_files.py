"""Writes Save files with the real datamultiproc 0.1.3 (run in a venv that has it)."""
import sys
from pathlib import Path
from typing import Optional, Dict
import numpy as np
import datamultiproc
from datamultiproc import BaseSample, Processor, Compose, Save

class TileSample(BaseSample):
    size: int
    label: Optional[str] = None
    pixels: np.ndarray
    features: Dict[str, float] = {}

class Measure(Processor):
    scale: float = 1.0
    def process(self, sample):
        sample.features = {"mean": float(sample.pixels.mean()) * self.scale, "max": float(sample.pixels.max())}
        return sample

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
pipeline = Compose([Measure(scale=2.0), Save(save_to_dir=out)])
for i in range(3):
    s = TileSample(id=f"tile-{i}", size=i + 1, label=None if i == 1 else f"l{i}", pixels=np.arange(4, dtype=np.uint8).reshape(2, 2) + i)
    pipeline(s)
print(sorted(p.relative_to(out).as_posix() for p in out.rglob("*")))
import pydantic; print(pydantic.VERSION, datamultiproc.__name__)
