"""Save: write each sample that reaches this step to disk."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from datamultiproc.core import BaseSample, Processor, current_recorder
from datamultiproc.storage._files import write_pickle_atomic

__all__ = ["Save"]


class Save(Processor):
    """Write each sample under ``save_to_dir/<last stage in its history>/`` and pass it on.

    Unlike :class:`Cache`, ``Save`` never loads: it always writes.

    Parameters
    ----------
    save_to_dir
        Root folder; created as needed.
    """

    save_to_dir: Path

    def process(self, sample: Any) -> Any:
        """Write the sample and return it unchanged."""
        return self._run_step(sample, ())

    def entry_path(self, sample: BaseSample) -> Path:
        """Return the file ``sample`` is saved to."""
        stage = sample.processing_history[-1][0] if sample.processing_history else "unprocessed"
        return Path(self.save_to_dir) / stage / f"{sample.id}.pickle"

    def _run_step(self, sample: Any, upstream: tuple[Processor, ...]) -> Any:
        started = time.perf_counter()
        write_pickle_atomic(self.entry_path(sample), sample)
        recorder = current_recorder()
        if recorder is not None:
            recorder.add("Save", self.describe_params(), time.perf_counter() - started)
        return sample
