"""plan(): what a run would load and what it would compute, without running anything.

For every Cache in a pipeline the plan lists how many samples would hit and miss,
why the misses miss, and how many worker seconds they would take, estimated from
the compute times stored with entries of this (or the closest earlier)
configuration. It lists each configuration folder once (one ``os.scandir``) and
reads a few entries' 13-byte timing trailers; it loads no entry and writes nothing.
"""

from __future__ import annotations

import math
import os
import statistics
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datamultiproc.core import BaseSample, Processor, SampleRecord, check_is_sample, walk
from datamultiproc.storage._cache import SUFFIX, Cache
from datamultiproc.storage._files import read_seconds
from datamultiproc.storage._keys import CacheConfig, begin_run, content_digest, key_leaves
from datamultiproc.storage._names import entry_name
from datamultiproc.storage._plan_html import plan_html
from datamultiproc.storage._reasons import (
    NEW_SAMPLE,
    closest_configuration,
    configuration_reason,
)

if TYPE_CHECKING:
    import pandas as pd  # noqa: TID251 (type hints only)

__all__ = [
    "Plan",
    "StagePlan",
    "plan",
    "reasons_before_run",
    "register_plan_frame",
    "settle_reasons",
]

UNKNOWN_REASON = "input depends on steps that have not run (key='content')"
_TIMED_ENTRIES = 25  # entries whose stored compute time the estimate reads
_frame_view: list[Callable[[Plan], pd.DataFrame]] = []


@dataclass(frozen=True)
class StagePlan:
    """What a run would do at one Cache.

    Attributes
    ----------
    stage
        The cached stage.
    configuration
        The configuration folder, ``<stage>/<digest>``, relative to ``cache_dir``.
    cache_dir
        The Cache's root folder.
    hits, misses
        Samples that would be loaded and computed.
    unknown
        Samples whose lookup cannot be known before running: under
        ``key="content"``, when the Cache's input depends on steps that have not run.
    reasons
        Why the misses miss, ``reason -> samples``, most frequent first.
    estimated_seconds
        Worker seconds the misses would take (summed over samples, not wall
        time): misses times the median compute time stored with entries of this
        configuration, or the closest earlier one; NaN when none is stored.
    """

    stage: str
    configuration: str
    cache_dir: str
    hits: int
    misses: int
    unknown: int
    reasons: dict[str, int] = field(default_factory=dict)
    estimated_seconds: float = math.nan


@dataclass(frozen=True)
class Plan:
    """What running a pipeline over some samples would load and compute.

    Made by :func:`plan` (or ``pipeline.plan(samples)``). Shows as a table in a
    notebook; :meth:`to_frame` gives one row per cached stage.

    Attributes
    ----------
    samples
        Number of samples planned for.
    stages
        One :class:`StagePlan` per Cache, in pipeline order.
    """

    samples: int
    stages: tuple[StagePlan, ...]

    @property
    def estimated_seconds(self) -> float:
        """Worker seconds of every miss (NaN if any stage with misses has no timing)."""
        return sum((s.estimated_seconds for s in self.stages if s.misses), 0.0)

    def to_frame(self) -> pd.DataFrame:
        """Return one row per cached stage.

        Columns: ``stage``, ``configuration``, ``hits``, ``misses``, ``unknown``,
        ``reasons`` (text, most frequent first, with counts) and
        ``estimated_seconds`` (worker seconds of the misses).
        """
        if not _frame_view:
            msg = "no DataFrame view registered for plans: import datamultiproc first"
            raise RuntimeError(msg)
        return _frame_view[0](self)

    def __repr__(self) -> str:
        lines = [f"Plan of {self.samples} samples:"]
        for s in self.stages:
            seconds = "" if math.isnan(s.estimated_seconds) else f", ~{s.estimated_seconds:.3g} s"
            unknown = f", {s.unknown} unknown" if s.unknown else ""
            reasons = f" ({format_reasons(s.reasons)})" if s.reasons else ""
            lines.append(f"  {s.stage}: {s.hits} hit, {s.misses} miss{unknown}{seconds}{reasons}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return plan_html(self)


def register_plan_frame(view: Callable[[Plan], pd.DataFrame]) -> None:
    """Make ``view(plan)`` implement :meth:`Plan.to_frame` (the notebook layer does)."""
    _frame_view[:] = [view]


def format_reasons(reasons: dict[str, int]) -> str:
    """Return ``"reason (count); ..."``, most frequent first.

    Examples
    --------
    >>> format_reasons({"new sample": 2, "parameter h: 0.4 → 0.5": 8})
    'parameter h: 0.4 → 0.5 (8); new sample (2)'
    """
    ranked = sorted(reasons.items(), key=lambda item: -item[1])
    return "; ".join(f"{reason} ({count})" for reason, count in ranked)


def plan(pipeline: Processor, samples: Iterable[Any]) -> Plan:
    """Say what running ``pipeline`` over ``samples`` would load and compute; run nothing.

    Parameters
    ----------
    pipeline
        A processor, Compose or Cache; every Cache in it is planned.
    samples
        The samples the run would get (a list; an iterator is consumed).

    Returns
    -------
    Plan
        One :class:`StagePlan` per Cache. An entry that exists counts as a hit
        (entries are not loaded, so a corrupt one shows up only when run).

    Examples
    --------
    >>> import tempfile
    >>> class Sample(BaseSample):
    ...     data: int
    >>> class AddOne(Processor):
    ...     def process(self, sample):
    ...         sample.data = sample.data + 1
    ...         return sample
    >>> cache = Cache(processor=AddOne(), cache_dir=tempfile.mkdtemp())
    >>> plan(cache, [Sample(id="a", data=1)])
    Plan of 1 samples:
      AddOne: 0 hit, 1 miss (new configuration (1))
    """
    begin_run()  # keys read the code and data as they are now, as the run will
    items = list(samples)
    for item in items:
        check_is_sample(item, where="plan()")
    stages: list[StagePlan] = []
    _plan_steps((pipeline,), (), items, list(range(len(items))), stages)
    return Plan(samples=len(items), stages=tuple(stages))


def _plan_steps(
    steps: tuple[Processor, ...],
    upstream: tuple[Processor, ...],
    samples: list[BaseSample],
    reach: list[int] | None,
    out: list[StagePlan],
) -> None:
    # Mirrors how Compose passes `upstream` to its steps; `reach` are the samples that
    # get to this point (a Cache's processor only sees its misses), None if unknown.
    for step in steps:
        if isinstance(step, Cache):
            missing = _plan_cache(step, upstream, samples, reach, out)
            _plan_steps(step.substeps(), upstream, samples, missing, out)
        else:
            _plan_steps(step.substeps(), upstream, samples, reach, out)
        upstream = (*upstream, step)


def _plan_cache(
    cache: Cache,
    upstream: tuple[Processor, ...],
    samples: list[BaseSample],
    reach: list[int] | None,
    out: list[StagePlan],
) -> list[int] | None:
    config = cache.configuration(upstream)
    folder = Path(cache.cache_dir) / config.folder
    reason = configuration_reason(cache.cache_dir, config.folder, config.parts)
    known = cache.key == "id" or not key_leaves(upstream)
    if reach is None or (not known and reason is None):
        total = len(samples) if reach is None else len(reach)
        out.append(_stage(cache, config, 0, [], total, {}))
        return None
    if reason is not None:
        missing = list(reach)  # a new configuration has no entries
    else:
        names = _entry_names(folder)
        missing = [i for i in reach if _name(cache, samples[i]) not in names]
    reasons = {(reason or NEW_SAMPLE): len(missing)} if missing else {}
    out.append(_stage(cache, config, len(reach) - len(missing), missing, 0, reasons))
    return missing


def _stage(
    cache: Cache,
    config: CacheConfig,
    hits: int,
    missing: list[int],
    unknown: int,
    reasons: dict[str, int],
) -> StagePlan:
    estimate = math.nan
    if missing:
        per_sample = _median_seconds(Path(cache.cache_dir) / config.folder)
        if per_sample is None:
            closest = closest_configuration(cache.cache_dir, config.folder, config.parts)
            per_sample = None if closest is None else _median_seconds(closest[0])
        estimate = math.nan if per_sample is None else per_sample * len(missing)
    return StagePlan(
        stage=cache.stage_name,
        configuration=config.folder,
        cache_dir=str(cache.cache_dir),
        hits=hits,
        misses=len(missing),
        unknown=unknown,
        reasons=reasons,
        estimated_seconds=estimate,
    )


def _name(cache: Cache, sample: BaseSample) -> str:
    name = entry_name(sample.id)
    if cache.key == "content":
        name = f"{name}.{content_digest(sample)}"
    return name + SUFFIX


def _entry_names(folder: Path) -> set[str]:
    try:
        with os.scandir(folder) as entries:
            return {entry.name for entry in entries if entry.name.endswith(SUFFIX)}
    except OSError:
        return set()


def _median_seconds(folder: Path) -> float | None:
    timed = []
    for name in sorted(_entry_names(folder))[:_TIMED_ENTRIES]:
        seconds = read_seconds(folder / name)
        if seconds is not None:
            timed.append(seconds)
    return statistics.median(timed) if timed else None


def reasons_before_run(pipeline: Processor) -> dict[tuple[str, str], str]:
    """Before a run: why each new configuration in ``pipeline`` misses, by (stage, params).

    The runner calls it first, then :func:`settle_reasons` on the run's records: a
    worker that finds a configuration folder another worker created during the run
    says ``"new sample"``; the configuration was new, and this says why.
    """
    found: dict[tuple[str, str], str] = {}
    for step, upstream in walk(pipeline):
        if isinstance(step, Cache):
            config = step.configuration(upstream)
            reason = configuration_reason(step.cache_dir, config.folder, config.parts)
            if reason is not None:
                found[(step.record_stage, step.record_params)] = reason
    return found


def settle_reasons(
    records: list[SampleRecord], before: dict[tuple[str, str], str]
) -> list[SampleRecord]:
    """Replace ``"new sample"`` by the configuration's reason where it was new before the run."""
    if not before:
        return records
    settled = []
    for record in records:
        steps = tuple(
            step._replace(reason=before[(step.stage, step.params)])
            if step.reason == NEW_SAMPLE and (step.stage, step.params) in before
            else step
            for step in record.steps
        )
        settled.append(record._replace(steps=steps))
    return settled


def reason_counts(records: Iterable[SampleRecord]) -> Counter[str]:
    """Count miss reasons in a run's records (helper for displays and tests)."""
    return Counter(
        step.reason for record in records for step in record.steps if step.reason is not None
    )
