"""The Dask client takes part: tiny samples run in the calling process, as on the process backend.

A Dask task costs milliseconds of CPU in the client (which hosts a LocalCluster's
scheduler) and in the worker; chunks make that small per sample, yet moving a tiny
sample to a worker and its result back still costs the client more than processing
it. :class:`ClientShare` lets the client process such samples itself, with the process
backend's parts: the same measured decision (:class:`~._policy.InlinePolicy`: the
workers' pace, the client's CPU per sample moved, a worker's CPU per sample, a probe
in the client, backing off when samples get expensive) and the same runner
(:class:`~._inline.ParentRunner`: a private copy of the pipeline unpickled from the
bytes the workers get, a copy of each sample, the workers' records and failures, the
worker named ``"parent"``).

Never in the client:

- pipelines with Cache or Save steps: their directories are the cluster's, which the
  client may not see;
- runs with ``timeout=`` (refused on Dask anyway: nothing can stop a running sample);
- with ``DaskBackend(inline=False)``;
- on the first run of a pipeline with a client, a sample before the workers returned
  measured chunks of this run (at least 32 samples in 3 chunks): unlike the process
  backend's first runs, no probe in the client comes first, since the Dask workers
  already run; a sample that crashes its interpreter then meets a worker first, not
  the notebook's kernel. A run that the client took part in and that ended cleanly
  leaves its figures for the next run of the same pipeline with the same client, which
  (as on the process backend) probes the client before any worker gets a sample, and
  sends samples to the workers only if that probe loses;
- after a Dask worker died during the run (``KilledWorker``): the pipeline may crash
  its process, and the client's is the notebook's kernel.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict, deque
from typing import Any

from datamultiproc.execution._feeder import ChunkFeeder
from datamultiproc.execution._inline import ParentRunner
from datamultiproc.execution._job import Item, Outcome
from datamultiproc.execution._policy import InlineFigures, InlinePolicy

__all__ = ["ClientShare"]

_RECALLED_PIPELINES = 8  # per client
# What the last clean run of each pipeline (by key) in which the client took part measured.
_RECALLED: weakref.WeakKeyDictionary[Any, OrderedDict[bytes, InlineFigures]] = (
    weakref.WeakKeyDictionary()
)
# When the client may probe each pipeline again after a lost probe (InlinePolicy.quiet_until).
_QUIET: weakref.WeakKeyDictionary[Any, OrderedDict[bytes, float]] = weakref.WeakKeyDictionary()


class ClientShare:
    """Decides which of one run's samples the Dask client runs itself, and runs them.

    Parameters
    ----------
    client
        The ``distributed.Client``: figures are recalled per client and pipeline.
    key, blob
        The pipeline's key and pickled bytes, as the workers get them.
    enabled
        ``False`` to leave every sample to the workers.
    """

    def __init__(self, client: Any, key: bytes, blob: bytes, *, enabled: bool) -> None:
        self.policy = InlinePolicy(enabled=enabled)
        self.recalled = _RECALLED.setdefault(client, OrderedDict())
        figures = self.recalled.get(key)
        if figures is not None:
            self.policy.recall(figures)  # the client's probe comes first
        self.quiet = _QUIET.setdefault(client, OrderedDict())
        self.policy.keep_quiet(self.quiet.get(key, 0.0))
        self.key, self.enabled = key, enabled
        self.runner = ParentRunner(key, blob)
        self.leftovers: deque[Item] = deque()  # read for the client, past its deadline
        self.decided = False  # the policy had the workers' pace when it was last asked
        self.lost = 0  # probes the client lost in this run

    @property
    def measuring(self) -> bool:
        """Whether the workers' chunks stay small, since the client may yet take the rest.

        Until the policy first chose, and after the client's first lost probe until the
        next: a probe lost to a moment of load must not leave the input to chunks that
        each hold a tenth of a second of work. After a second lost probe the workers
        have shown they keep up; CPU-heavy samples, never probed, get full chunks at once.
        """
        if not self.policy.enabled:
            return False
        return not self.decided or self.lost == 1

    @property
    def takes_new(self) -> bool:
        """Whether new samples go to the client only (none to the workers)."""
        return not self.policy.needs_workers

    def run(self, feeder: ChunkFeeder, queued: int) -> list[Outcome]:
        """Run the client's next chunk, if the policy asks for one; ``queued``: at the workers.

        Samples the client did not get to before its deadline wait in
        :attr:`leftovers` for the workers.
        """
        size = self.policy.chunk_size()
        self.decided = self.decided or self.policy.pace is not None
        if not size:
            return []
        sizer = feeder.sizer
        if sizer.bytes_per_sample:  # the byte cap of chunks holds for the client's too
            size = min(size, max(1, int(sizer.target_bytes / sizer.bytes_per_sample)))
        items = feeder.read(size)
        if not items:
            return []
        sizer.took(len(items))
        waiting = queued if self.policy.needs_workers else None
        probe = self.policy.probing
        outcomes = self.runner.run_measured(items, self.policy, queued=waiting)
        self.lost += probe and not self.policy.active
        self.leftovers.extend(items[len(outcomes) :])
        return outcomes

    def observe(self, samples: int, cpu_seconds: float) -> None:
        """Note a chunk back from a worker that spent ``cpu_seconds`` of CPU on it."""
        self.policy.observe_results(samples, cpu_seconds)

    def worker_died(self) -> None:
        """Send every sample to the workers from now on: a Dask worker died during this run."""
        self.policy.enabled = self.policy.active = False

    def take_leftovers(self, size: int) -> list[Item]:
        """Return up to ``size`` samples the client left to the workers."""
        return [self.leftovers.popleft() for _ in range(min(size, len(self.leftovers)))]

    def close(self, *, keep: bool) -> None:
        """End of the run: unless interrupted, keep the pipeline copy and what was measured."""
        self.runner.release(keep=keep)
        if not self.enabled:
            return  # the client had no part in this run: it measured nothing for the next
        # A run a worker died in (the client left out since) keeps no figures either.
        self.recalled.pop(self.key, None)
        self.quiet.pop(self.key, None)
        quiet = self.policy.quiet_until() if keep else 0.0
        if quiet:
            self.quiet[self.key] = quiet
            while len(self.quiet) > _RECALLED_PIPELINES:
                self.quiet.popitem(last=False)
        figures = self.policy.figures() if keep else None
        if figures is not None:
            self.recalled[self.key] = figures
            while len(self.recalled) > _RECALLED_PIPELINES:
                self.recalled.popitem(last=False)
