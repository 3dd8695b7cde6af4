"""Cache: run a processor once per sample and reuse its stored result."""

from __future__ import annotations

import pickle
import time
from pathlib import Path
from typing import Any

from datamultiproc.core import BaseSample, Processor, current_recorder
from datamultiproc.storage._files import write_pickle_atomic

__all__ = ["Cache"]


class Cache(Processor):
    """Store each sample after ``processor`` and load it on later runs instead of recomputing.

    Files go to ``cache_dir/<processor class name>/``, one per sample.

    Parameters
    ----------
    processor
        The step whose results are cached.
    cache_dir
        Root folder of the cache; created as needed.
    """

    processor: Processor
    cache_dir: Path

    @property
    def stage_name(self) -> str:
        """The wrapped processor's stage name."""
        return self.processor.stage_name

    def iter_processors(self) -> tuple[Processor, ...]:
        """A Cache is one step of its own."""
        return (self,)

    def setup(self) -> None:
        """Set up the wrapped processor."""
        self.processor.setup()

    def process(self, sample: Any) -> Any:
        """Load the cached result for ``sample`` or compute and store it."""
        return self._run_step(sample, ())

    def entry_path(self, sample: BaseSample) -> Path:
        """Return the file that holds the cached result for ``sample``."""
        return Path(self.cache_dir) / self.processor.stage_name / f"{sample.id}.pickle"

    def _run_step(self, sample: Any, upstream: tuple[Processor, ...]) -> Any:
        path = self.entry_path(sample)
        recorder = current_recorder()
        started = time.perf_counter()
        if path.is_file():
            with path.open("rb") as handle:
                cached = pickle.load(handle)
            if recorder is not None:
                recorder.add(self.stage_name, self.processor.describe_params(),
                             time.perf_counter() - started, cache_hit=True)
            return cached
        result = self.processor._run_step(sample, upstream)
        write_pickle_atomic(path, result)
        if recorder is not None:
            recorder.mark_last(cache_hit=False)
        return result
