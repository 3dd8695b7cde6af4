"""The Dask backend: run chunks of samples as tasks on a ``distributed`` cluster.

``distributed`` is imported only when this backend is asked for, and is an extra:
``pip install "datamultiproc[dask]"``.

How a run goes:

- The pipeline is pickled once (cloudpickle, so classes from a notebook's ``__main__``
  travel by value) and registered as a worker plugin. The scheduler hands the plugin
  to every worker, including workers that join or restart later; tasks carry only the
  plugin's name and their samples.
- Classes that cannot be imported by name (defined in a notebook) travel once per
  cluster: the first chunk that holds one carries it by value, and the parent then
  registers it with every worker, present and future, through a
  :class:`ClassTablePlugin`; later chunks, and results coming back, name it by a token.
- On its first chunk a worker process checks that the Cache and Save directories are
  writable and calls ``pipeline.setup()``, once per process (worker-side code is
  :func:`~datamultiproc.execution._worker.run_payload`, shared with executor backends,
  called from :mod:`._dask_worker`), then takes what is alive out of garbage
  collections (``gc.freeze()``), as process workers do.
- The parent keeps at most two chunks per worker thread in flight (one until the first
  chunk is back), adding a chunk as one finishes (``distributed.as_completed``), so a
  long generator is read lazily; workers get their next chunks before the parent
  decodes the results that came back. Chunks start at one sample; once a chunk has
  come back, they take the size its measured time allows (about 100 ms of worker time
  each, at most 4,096 samples) instead of doubling one round trip at a time, and near
  the end of the input they shrink no further than 20 ms of work, since each task costs
  a few milliseconds of CPU in the client and the worker (the loop is
  :class:`~._dask_feeder.DaskFeeder`).
- A worker that dies is Dask's business: the scheduler reruns its tasks elsewhere, up
  to ``distributed.scheduler.allowed-failures`` times, then fails the task with
  ``KilledWorker``. The samples of such a chunk are then rerun one at a time with
  nothing else of the run in flight, so the sample that kills its worker ends as a
  failure record and its chunk-mates complete.
- When moving a sample costs more than processing it, the client runs samples itself,
  as the process backend's parent does (see :mod:`._dask_inline` for when it may):
  never for pipelines with Cache or Save steps, never with ``inline=False``.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
import weakref
from collections.abc import Iterator
from typing import Any

from datamultiproc.core import Processor, walk
from datamultiproc.exceptions import ExecutionError, MissingDependencyError
from datamultiproc.execution._codec import encode_pipeline
from datamultiproc.execution._dask_feeder import DaskFeeder
from datamultiproc.execution._dask_inline import ClientShare
from datamultiproc.execution._dask_worker import PipelinePlugin
from datamultiproc.execution._job import Item, Job, Outcome, usable_cores
from datamultiproc.execution._reloads import code_token

__all__ = ["DaskBackend", "dask_backend"]


def dask_backend(backend: Any, workers: int | None) -> DaskBackend:
    """Return the backend for ``backend="dask"`` or a ``distributed.Client``."""
    return DaskBackend(None if isinstance(backend, str) else backend, workers=workers)


class DaskBackend:
    """Run samples on the workers of a Dask ``distributed`` cluster.

    Parameters
    ----------
    client
        A ``distributed.Client``; ``None`` (default) uses the current client
        (``distributed.get_client()``).
    workers
        At most this many chunks run at once; ``None`` (default): one per worker thread
        of the cluster when the run starts.
    inline
        ``True`` (default): when samples cost less to process than to move to a worker,
        the client runs them itself, as ``MultiprocessBackend(inline=True)`` does (on
        copies, with a copy of the pipeline; their records name the worker
        ``"parent"``). On the first run of a pipeline with this client, only once the
        workers' first chunks are back; after a clean run in which the client took
        part, the next run of the pipeline tries the client first. Never for a
        pipeline with Cache or Save steps (the client may not see the cluster's
        directories), after a worker died during the run, or with ``timeout=`` (which
        Dask refuses anyway). ``False``: every sample on the cluster (e.g. for code
        that may crash the interpreter).

    Raises
    ------
    MissingDependencyError
        If ``distributed`` is not installed.
    ValueError
        If there is no current client, or the client is asynchronous.

    Examples
    --------
    >>> from distributed import Client  # doctest: +SKIP
    >>> from datamultiproc.execution import DaskBackend  # doctest: +SKIP
    >>> backend = DaskBackend(Client(), inline=False)  # doctest: +SKIP
    >>> result = pipeline.run(samples, backend=backend)  # doctest: +SKIP
    """

    name = "dask"

    def __init__(
        self, client: Any = None, *, workers: int | None = None, inline: bool = True
    ) -> None:
        distributed = _import_distributed()
        if client is None:
            try:
                client = distributed.get_client()
            except ValueError as exc:
                msg = (
                    "backend='dask' needs a running distributed.Client: create one first "
                    "(client = distributed.Client() for a local cluster, or "
                    "Client('tcp://scheduler:8786')), or pass it as backend=client"
                )
                raise ValueError(msg) from exc
        if not isinstance(client, distributed.Client):
            msg = f"backend must be 'dask' or a distributed.Client, not {client!r}"
            raise TypeError(msg)
        if client.asynchronous:
            msg = "backend=client needs a synchronous distributed.Client, not asynchronous=True"
            raise ValueError(msg)
        self.client = client
        threads = sum(client.nthreads().values())
        self.workers = workers or threads or usable_cores()
        self.inline = inline

    def map(self, job: Job, items: Iterator[Item]) -> Iterator[Outcome]:
        """Yield outcomes as chunks complete; see the module docstring."""
        if job.timeout is not None:
            msg = "timeout= is not supported with backend='dask': Dask cannot stop a running task"
            raise ValueError(msg)
        key, blob = encode_pipeline(job.pipeline)
        directories = tuple(sorted(storage_directories(job.pipeline)))
        plugin = PipelinePlugin(
            f"datamultiproc-{key.hex()[:8]}-{uuid.uuid4().hex[:8]}",
            key,
            blob,
            directories,
            code_token(),  # workers reload user modules changed since (see _reloads)
        )
        try:
            self.client.register_plugin(plugin, name=plugin.name)
        except Exception as exc:
            msg = (
                f"the Dask workers cannot load the pipeline ({type(exc).__name__}: {exc}); "
                "install datamultiproc and the pipeline's dependencies on every worker"
            )
            raise ExecutionError(msg) from exc
        # The client may not see the cluster's Cache and Save directories.
        share = ClientShare(self.client, key, blob, enabled=self.inline and not directories)
        feeder = DaskFeeder(self.client, job, items, plugin.name, self.workers, share)
        feeder.known = _known_classes(self.client)
        keep = False
        try:
            yield from feeder.run()
            keep = not job.stop.is_set()
        except GeneratorExit:
            keep = not job.stop.is_set()  # closed early: on_error="raise", or a Stop
            raise
        finally:
            feeder.cancel()
            # A sample interrupted in the client may have left its pipeline copy half-way.
            share.close(keep=keep)
            # In the background: the run's results are all in, and waiting for every
            # worker to drop the plugin would add a round trip to each run.
            threading.Thread(
                target=_unregister, args=(self.client, plugin.name), daemon=True
            ).start()


def _unregister(client: Any, name: str) -> None:
    # Best effort: the cluster may be gone; the plugin then went with it.
    with contextlib.suppress(Exception):
        client.unregister_worker_plugin(name)


# Tokens of the classes registered with each client's workers, kept across runs.
_REGISTERED: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()


def _known_classes(client: Any) -> set[str]:
    return _REGISTERED.setdefault(client, set())


def storage_directories(pipeline: Processor) -> set[str]:
    """Return the directories (Cache and Save ones) a pipeline's steps write to."""
    return {directory for step, _ in walk(pipeline) for directory in step.storage_directories()}


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:
        msg = "backend='dask' needs the 'distributed' package: pip install \"datamultiproc[dask]\""
        raise MissingDependencyError(msg) from exc
    return distributed
