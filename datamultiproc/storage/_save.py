"""Save: write each sample that reaches this step to disk."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, ClassVar

from pydantic import PrivateAttr

from datamultiproc.core import BaseSample, Processor, current_recorder
from datamultiproc.exceptions import StorageError
from datamultiproc.storage._cache import _Memo, _RuntimeState, valid_memo
from datamultiproc.storage._files import write_pickle_atomic
from datamultiproc.storage._keys import cache_config
from datamultiproc.storage._names import entry_name, stage_folder_name
from datamultiproc.storage._save_records import append_record, write_description

__all__ = ["Save"]


class Save(Processor):
    """Write each sample under ``save_to_dir/<last stage in its history>/`` and pass it on.

    Unlike :class:`Cache`, ``Save`` never loads: it always writes, replacing the
    file of an earlier run atomically. File names are the sample ids when they are
    safe on every platform (``sample-001.pickle``); other ids are sanitized and get
    a short hash (see :func:`datamultiproc.storage.entry_name`). The files are
    pickles, readable with :meth:`BaseSample.read_file` and
    :func:`datamultiproc.load_saved`: only load ones you trust.

    Beside the files, in ``<Stage>/.configurations/``, it records which pipeline
    configuration wrote each file and when (the steps before the Save, identified
    as a Cache identifies its configuration), so :func:`datamultiproc.load_saved`
    never mixes results of different settings silently and
    :func:`datamultiproc.storage.prune` can remove files of other configurations.

    Parameters
    ----------
    save_to_dir
        Root folder; created as needed.
    """

    save_to_dir: Path
    _state: _RuntimeState = PrivateAttr(default_factory=lambda: _RuntimeState())

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

    def configuration(self, upstream: tuple[Processor, ...] = ()) -> str:
        """Return the id of the configuration that ``upstream`` steps make (16 hex digits)."""
        return self._memo(tuple(upstream)).config.digest[:16]

    def _run_step(self, sample: Any, upstream: tuple[Processor, ...]) -> Any:
        started = time.perf_counter()
        state: _RuntimeState = self.__pydantic_private__["_state"]  # type: ignore[index]
        memo = self._memo(upstream, state)
        path = self.entry_path(sample)
        size = write_pickle_atomic(path, sample)
        configuration = memo.config.digest[:16]
        described = f"{path.parent}{os.sep}{configuration}"
        try:
            if described not in state.manifests:
                write_description(path.parent, configuration, memo.config.manifest)
                state.manifests.add(described)
            append_record(path.parent, configuration, path.name, sample.id)
        except OSError as exc:
            msg = f"cannot record the save of {str(path)!r} in {str(path.parent)!r}: {exc}"
            raise StorageError(msg) from exc
        recorder = current_recorder()
        if recorder is not None:
            seconds = time.perf_counter() - started
            recorder.add("Save", self.describe_params(), seconds, bytes_written=size)
        return sample

    def _trace_step(self, sample: Any, upstream: tuple[Processor, ...]) -> tuple[Any, str]:
        """In a trace, pass the sample on without writing it."""
        return sample, "-"

    def _memo(self, upstream: tuple[Processor, ...], state: _RuntimeState | None = None) -> _Memo:
        memos = (state or self._state).memos
        memo = valid_memo(memos, upstream)
        if memo is None:
            config = cache_config(self, upstream, "id")
            memo = _Memo.of(upstream, upstream, config, str(self.save_to_dir), "Save")
            memos[tuple(map(id, upstream))] = memo
        return memo
