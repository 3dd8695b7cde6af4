"""What runs inside a Dask worker process for the Dask backend (see :mod:`._dask`).

The worker plugins the parent registers (the run's pickled pipeline, the notebook
class table) and the task function each chunk runs. ``distributed`` is imported only
for the plugin base class, and only if it is installed.
"""

from __future__ import annotations

import gc
import os
import pickle
import tempfile
import threading
import time
from typing import TYPE_CHECKING, Any, cast

import cloudpickle

from datamultiproc.exceptions import StorageError
from datamultiproc.execution._codec import register_class
from datamultiproc.execution._worker import run_payload

if TYPE_CHECKING:
    from distributed.diagnostics.plugin import WorkerPlugin
else:
    try:
        from distributed.diagnostics.plugin import WorkerPlugin
    except ImportError:  # DaskBackend() raises MissingDependencyError instead
        WorkerPlugin = object

__all__ = ["ClassTablePlugin", "PipelinePlugin", "run_chunk"]


class PipelinePlugin(WorkerPlugin):
    """A worker plugin holding one run's pickled pipeline.

    The scheduler keeps it and gives it to every worker, including ones that join or
    restart later; tasks find it in ``worker.plugins`` by name.
    """

    def __init__(
        self, name: str, key: bytes, blob: bytes, directories: tuple[str, ...], code: bytes
    ) -> None:
        self.name, self.key, self.blob, self.directories = name, key, blob, directories
        self.code = code  # the parent's code_token(): its user modules as of this run

    def setup(self, worker: Any) -> None:
        """Nothing to do at registration: tasks set the pipeline up lazily, in their thread."""

    def teardown(self, worker: Any) -> None:
        """Keep the set-up pipeline: a rerun in the same worker skips ``setup()``."""


class ClassTablePlugin(WorkerPlugin):
    """A worker plugin that registers notebook classes under the parent's tokens.

    Registered once per class and cluster, so chunks and results name the class by
    its token instead of carrying it by value (about a millisecond each way).
    """

    def __init__(self, name: str, blob: bytes) -> None:
        self.name, self.blob = name, blob

    def setup(self, worker: Any) -> None:
        """Register the classes in this worker process."""
        for token, cls in pickle.loads(self.blob):
            register_class(token, cls)


_PREPARED: set[tuple[bytes, bytes]] = set()  # (pipeline key, code token)
_WRITABLE: set[str] = set()  # directories this process has written to
_PREPARE_LOCK = threading.Lock()
_NO_SAMPLES = cloudpickle.dumps([], protocol=5)


def run_chunk(plugin_name: str, payload: bytes) -> tuple[str, bytes, float, float]:
    """Run one chunk in a Dask worker; return ``(worker, outcomes blob, seconds, CPU seconds)``."""
    from distributed import get_worker

    worker = get_worker()
    plugin = cast(PipelinePlugin, worker.plugins[plugin_name])
    label = f"dask-{worker.address.split('://')[-1]}"
    if (plugin.key, plugin.code) not in _PREPARED:
        _prepare(plugin, label)
    started, cpu = time.perf_counter(), time.thread_time()
    # The plugin is registered once per run: its name names the run.
    _, outcomes = run_payload(plugin.key, plugin.blob, payload, plugin.code, plugin_name)
    return label, outcomes, time.perf_counter() - started, time.thread_time() - cpu


def _prepare(plugin: PipelinePlugin, label: str) -> None:
    # A worker may run several task threads: set the pipeline up in one of them only.
    with _PREPARE_LOCK:
        if (plugin.key, plugin.code) in _PREPARED:
            return
        for directory in plugin.directories:
            if directory in _WRITABLE:
                continue
            problem = _check_writable(directory)
            if problem is None:
                _WRITABLE.add(directory)
            else:  # checked again by the next chunk: the user may fix it meanwhile
                msg = (
                    f"Dask worker {label} (pid {os.getpid()}) cannot write to {directory!r}: "
                    f"{problem}. Cache and Save directories must be readable and writable "
                    "by every worker: use an absolute path on a file system all workers share"
                )
                raise StorageError(msg)
        # Reloads changed user modules, unpickles and calls setup().
        run_payload(plugin.key, plugin.blob, _NO_SAMPLES, plugin.code)
        _PREPARED.add((plugin.key, plugin.code))
        # As in the process backend's workers: what lives now (Dask's worker, modules, the
        # set-up pipeline) leaves the collector's view. A full collection of a Dask
        # worker's heap takes tens of milliseconds, and chunks of small samples set
        # one off every few thousand samples.
        gc.freeze()


def _check_writable(directory: str) -> str | None:
    try:
        os.makedirs(directory, exist_ok=True)
        fd, path = tempfile.mkstemp(dir=directory, prefix=".tmp-probe-", suffix=".part")
        os.close(fd)
        os.unlink(path)
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None
