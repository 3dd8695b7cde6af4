"""When the parent runs samples itself: the decision, from measured costs.

See ``_inline`` for what running a sample in the parent guarantees, and
:class:`InlinePolicy` for how the choice is made and kept under review.
"""

from __future__ import annotations

import math
import time
from typing import NamedTuple

from datamultiproc.execution._firstrun import estimated_pace
from datamultiproc.execution._job import usable_cores

__all__ = ["InlineFigures", "InlinePolicy"]

# Before deciding, the workers must have sent back this many samples in this many chunks.
_MIN_MEASURED = 32
_MIN_CHUNKS = 3
_PROBE_SAMPLES = 32
_INLINE_SECONDS = 0.02  # parent time one inline chunk should take
_MAX_INLINE_CHUNK = 1024  # results held at once: memory stays flat in imap
_WORK_DECAY = 0.7  # weight of the earlier chunks in the estimate of a worker's CPU per sample
_FIRST_PROBE_SECONDS = 0.001  # a first run's probe stops with the first sample ending past this
_RETRY_SECONDS = 0.02  # after a probe that lost, wait this long (doubling) before the next
_MAX_RETRY_SECONDS = 2.0  # so noise never keeps the parent out for long
# A probe that lost by far (the parent at least this many times slower than the workers'
# pace) keeps the parent out for _QUIET_FACTOR times as long as it took, in this run and
# the next of its pipeline: lost probes then cost at most about 1 % of the time. A probe
# stalls the parent for a whole sample at least, and the workers may run dry meanwhile:
# on large arrays (W3) each one cost 15-25 ms, and probes every 20-80 ms made runs 1.5
# times as slow. A near loss (noise, a moment of load) is retried soon, as before.
_DECISIVE = 2.0
_QUIET_FACTOR = 100.0
# ...and only when a sample costs the parent at least this much: a probe of tiny
# samples (W1's, a Dask client's) lost to a moment of load costs little and is retried
# soon, or the parent would stay out of a whole run on noise.
_QUIET_MIN_SECONDS = 0.001
_MARGIN = 1.2  # hysteresis between the two modes
# A first run the parent won holds its estimated pace for the workers times this: their
# first chunks come back far slower than they run later (W1: about 70 µs per sample over
# the first three, 12-15 µs at full speed), so a stall in the parent must not start them.
_START_COST = 2.0
# Probe only samples whose processing costs a worker at most this many times what
# moving one costs the parent (the worker's figure includes its own unpickling).
_PROBE_RATIO = 4.0


class InlineFigures(NamedTuple):
    """What a run in which the parent took over measured, for the next run of its pipeline."""

    pace: float
    work: float
    transfer: float


class InlinePolicy:
    """Chooses, from measured costs, whether the next samples run in the parent.

    Four measurements, all taken during the run: ``pace``, the wall time per sample
    at which results come back from the workers; ``transfer``, the parent's CPU time
    per sample meanwhile (moving samples to and from workers); ``work``, a worker's
    CPU time per sample; ``inline``, the parent's time to copy and process a sample
    itself (measured on a small probe chunk). Samples run in the parent while
    ``inline`` beats ``pace``. A probe is only tried when processing a sample costs a
    worker less CPU than :data:`_PROBE_RATIO` times what moving it costs the parent,
    and less than the workers' pace, so CPU-heavy work (which
    the workers share) never runs serially, even when other programs slow the
    workers down; a probe stops early once it falls behind the workers' pace (samples that
    wait rather than compute, e.g. on I/O), and after a lost probe the next one
    waits :data:`_RETRY_SECONDS`, twice as long after each further loss; after a probe
    of samples that each cost the parent :data:`_QUIET_MIN_SECONDS` or more, lost by
    far (:data:`_DECISIVE`), at least :data:`_QUIET_FACTOR` times as long as the probe
    took, and the next run of the pipeline keeps to that too (:meth:`quiet_until`,
    :meth:`keep_quiet`).

    A policy may start from the figures of an earlier run of the same pipeline in
    which the parent took over (:meth:`recall`): it then asks for a probe at once,
    before any worker runs a sample, and needs workers (:attr:`needs_workers`) only
    once that probe loses against the recalled pace, or samples get more expensive.
    A first run, with no worker alive (:meth:`start_first`), likewise probes the
    parent first, and compares it with the pace that moving the probe's samples
    predicts for the workers (see ``_firstrun``); only if the parent loses do the
    workers start.

    Parameters
    ----------
    enabled
        ``False`` to always use the workers.
    """

    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self.first_result: float | None = None
        self.last_result = 0.0
        self.first_cpu = self.last_cpu = 0.0
        self.returned = 0  # samples back from workers after the first chunk
        self.chunks = 0
        self.work: float | None = None
        self.work_cpu = self.work_samples = 0.0
        self.inline: float | None = None
        self.active = False
        self.probing = False
        self.next_probe = 0.0
        self.retry_seconds = _RETRY_SECONDS
        self.recalled: InlineFigures | None = None
        self.probe_started = 0.0
        self.quiet = 0.0  # no probe before this time.monotonic(): one lost by far
        self.first_run = False  # a first run's probe is due: no worker before it
        self.slots = 0  # the workers a first run would start

    @property
    def pace(self) -> float | None:
        """Wall seconds per sample coming back from the workers, once measured (or recalled)."""
        if self.first_result is None or self.returned < _MIN_MEASURED or self.chunks < _MIN_CHUNKS:
            return None if self.recalled is None else self.recalled.pace
        return (self.last_result - self.first_result) / self.returned

    @property
    def needs_workers(self) -> bool:
        """Whether samples go to the workers now (neither the parent nor its probe takes them)."""
        return not self.active and self.recalled is None and not self.first_run

    def start_first(self, workers: int) -> None:
        """Probe the parent before starting ``workers`` workers (a first run: no worker alive)."""
        if self.enabled and self.recalled is None:
            self.first_run, self.slots = True, workers

    def observe_first(self, inline: float, transfer: float) -> None:
        """Decide a first run from its probe: ``inline`` per sample, ``transfer`` per round trip.

        The parent keeps the samples if it beats the pace estimated for the workers
        (by :data:`_MARGIN`) and a sample costs less than :data:`_PROBE_RATIO` times
        its transfer, as on a later run (the estimate then stands in for recalled
        figures); otherwise the workers start.
        """
        self.first_run = self.probing = False
        spent = time.monotonic() - self.probe_started
        pace = estimated_pace(inline, transfer, workers=self.slots, cores=usable_cores())
        if inline * _MARGIN < pace and inline < _PROBE_RATIO * transfer:
            # Workers not started yet would reach that pace only after their start and
            # first chunks: the parent gives the samples up only well past it.
            self.recalled = InlineFigures(_START_COST * pace, inline, transfer)
            self.work = self.inline = inline
            self.active = True
            return
        # Not kept: a later probe must pass the workers' figures first (CPU-heavy samples
        # never go back to the parent on the strength of this one).
        self.inline = None
        self._back_off(spent, decisive=_lost_by_far(inline, pace))

    def recall(self, figures: InlineFigures) -> None:
        """Start from an earlier run's figures: probe the parent before using any worker."""
        if self.enabled:
            self.recalled = figures
            self.work = figures.work

    def figures(self) -> InlineFigures | None:
        """Return the figures a later run may :meth:`recall`; ``None`` unless the parent took over."""
        pace = self.pace
        if not self.active or pace is None or self.work is None:
            return None
        return InlineFigures(pace, self.work, self.transfer)

    def _forget(self) -> None:
        """Drop recalled figures: from now on only the workers' own measurements count."""
        self.recalled = None
        if not self.work_samples:
            self.work = None

    def observe_results(self, samples: int, cpu_seconds: float) -> None:
        """Note a chunk of ``samples`` back from a worker that spent ``cpu_seconds`` on it."""
        # Weighted by samples, recent chunks more: the first chunks (a few samples, each
        # paying a chunk's fixed costs) must not hold the estimate up for long.
        self.work_cpu = _WORK_DECAY * self.work_cpu + cpu_seconds
        self.work_samples = _WORK_DECAY * self.work_samples + max(samples, 1)
        self.work = self.work_cpu / self.work_samples
        if self.active:
            return  # retries finishing while the parent works say nothing about the pace
        now, cpu = time.perf_counter(), time.thread_time()
        if self.first_result is None:
            self.first_result, self.first_cpu = now, cpu
        else:
            self.returned += samples
            self.chunks += 1
        self.last_result, self.last_cpu = now, cpu

    @property
    def transfer(self) -> float:
        """The parent's CPU seconds per sample while the workers ran them."""
        if not self.returned and self.recalled is not None:
            return self.recalled.transfer
        return (self.last_cpu - self.first_cpu) / max(self.returned, 1)

    def observe_inline(self, seconds: float, samples: int) -> None:
        """Fold the time of an inline chunk into the estimate (a probe's replaces it)."""
        per_sample = seconds / max(samples, 1)
        if self.inline is None or self.probing:
            self.inline = per_sample  # a probe is a fresh look: no stale outlier lingers
        else:
            self.inline = 0.5 * self.inline + 0.5 * per_sample
        pace = self.pace
        if self.probing and pace is not None and self.inline * _MARGIN >= pace:
            spent = time.monotonic() - self.probe_started
            self._back_off(spent, decisive=_lost_by_far(self.inline, pace))
            self._forget()
        elif self.probing and pace is not None:
            # Won: from now on no new samples go to the workers (results arriving before
            # the next inline chunk would otherwise send them more).
            self.active = True
            self.retry_seconds = _RETRY_SECONDS
        self.probing = False

    def _back_off(self, spent: float, *, decisive: bool) -> None:
        """Wait before the next probe: this one took ``spent`` seconds and lost.

        By far (``decisive``): :data:`_QUIET_FACTOR` times as long as it took, at least.
        """
        now = time.monotonic()
        if decisive:
            self.quiet = max(self.quiet, now + _QUIET_FACTOR * spent)
        self.next_probe = max(now + self.retry_seconds, self.quiet)
        self.retry_seconds = min(2 * self.retry_seconds, _MAX_RETRY_SECONDS)

    def quiet_until(self) -> float:
        """Return the ``time.monotonic()`` before which no probe is due after one lost by far.

        0 if none was. A later run of the same pipeline keeps to it (:meth:`keep_quiet`):
        the same samples would lose the same probe.
        """
        return 0.0 if self.active else self.quiet

    def keep_quiet(self, until: float) -> None:
        """Probe no sooner than ``until`` (an earlier run's :meth:`quiet_until`)."""
        self.quiet = max(self.quiet, until)
        self.next_probe = max(self.next_probe, until)

    def deadline(self, size: int, started: float) -> float:
        """Return when an inline chunk of ``size`` samples started at ``started`` must stop.

        A probe stops once it is slower than the workers would have been; a chunk
        once it took twice its expected time (samples became expensive).
        """
        pace = self.pace or 0.0
        if self.probing and self.first_run:
            return started + _FIRST_PROBE_SECONDS
        if self.probing or self.inline is None:
            return started + size * pace
        return started + 2 * size * max(self.inline, pace)

    def chunk_size(self) -> int:
        """Return how many samples to run in the parent next; 0 to use the workers."""
        if self.first_run:  # the first look at the samples: the parent's probe
            self.probing = True
            self.probe_started = time.monotonic()
            return _PROBE_SAMPLES
        pace = self.pace
        if not self.enabled or pace is None or self.work is None:
            return 0
        now = time.monotonic()
        if self.recalled is not None and not self.active:
            # Recalled figures: the parent's probe comes first; without one, the workers.
            if self.inline is not None or self.probing:
                self._forget()
                return 0
            self.next_probe = math.inf
            self.probing = True
            self.probe_started = now
            return _PROBE_SAMPLES
        if self.active and self.inline is not None and self.inline > _MARGIN * pace:
            self.active = False  # samples got more expensive: back to the workers
            self.inline = None  # a mix of cheap and expensive samples: only a new probe counts
            self._forget()
            self.next_probe = now + self.retry_seconds
        elif not self.active and self.inline is not None and self.inline * _MARGIN < pace:
            self.active = True
            self.retry_seconds = _RETRY_SECONDS
        elif (
            not self.active
            and self.work < min(pace, _PROBE_RATIO * self.transfer)
            and now >= self.next_probe
        ):
            # Processing alone is faster than the workers' pace: measure the parent.
            self.next_probe = math.inf  # set again once the probe is measured
            self.probing = True
            self.probe_started = now
            return _PROBE_SAMPLES
        if not self.active or self.inline is None:
            return 0
        return max(1, min(_MAX_INLINE_CHUNK, int(_INLINE_SECONDS / max(self.inline, 1e-7))))


def _lost_by_far(inline: float, pace: float) -> bool:
    """Whether a probe at ``inline`` per sample lost to ``pace`` by far, on costly samples."""
    return inline >= _QUIET_MIN_SECONDS and inline >= _DECISIVE * pace
