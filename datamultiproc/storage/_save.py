"""Save: write each sample that reaches this step to disk."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, ClassVar

from datamultiproc.core import BaseSample, Processor, current_recorder
from datamultiproc.storage._files import write_pickle_atomic
from datamultiproc.storage._names import entry_name, stage_folder_name

__all__ = ["Save"]


class Save(Processor):
    """Write each sample under ``save_to_dir/<last stage in its history>/`` and pass it on.

    Unlike :class:`Cache`, ``Save`` never loads: it always writes, replacing the
    file of an earlier run atomically. File names are the sample ids when they are
    safe on every platform (``sample-001.pickle``); other ids are sanitized and get
    a short hash (see :func:`datamultiproc.storage.entry_name`). The files are
    pickles, readable with :meth:`BaseSample.read_file`: only load ones you trust.

    Parameters
    ----------
    save_to_dir
        Root folder; created as needed.
    """

    save_to_dir: Path

    #: Saving does not change a sample, so a Save is not part of a later Cache's key.
    changes_samples: ClassVar[bool] = False

    def process(self, sample: Any) -> Any:
        """Write the sample and return it unchanged."""
        return self._run_step(sample, ())

    def storage_directories(self) -> tuple[str, ...]:
        """Return ``(save_to_dir,)``."""
        return (os.fspath(self.save_to_dir),)

    def entry_path(self, sample: BaseSample) -> Path:
        """Return the file ``sample`` is saved to."""
        stage = sample.processing_history[-1][0] if sample.processing_history else "unprocessed"
        return Path(self.save_to_dir) / stage_folder_name(stage) / f"{entry_name(sample.id)}.pickle"

    def _run_step(self, sample: Any, upstream: tuple[Processor, ...]) -> Any:
        started = time.perf_counter()
        size = write_pickle_atomic(self.entry_path(sample), sample)
        recorder = current_recorder()
        if recorder is not None:
            seconds = time.perf_counter() - started
            recorder.add("Save", self.describe_params(), seconds, bytes_written=size)
        return sample

    def _trace_step(self, sample: Any, upstream: tuple[Processor, ...]) -> tuple[Any, str]:
        """In a trace, pass the sample on without writing it."""
        return sample, "-"
