"""Text and HTML reprs of a RunResult (stdlib only, so showing a result never loads pandas)."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from datamultiproc.storage import CacheStats

if TYPE_CHECKING:
    from datamultiproc.execution import RunResult

__all__ = ["result_html", "result_text"]

#: Failures listed in the HTML repr; ``result.failures_frame()`` has them all.
MAX_FAILURES_SHOWN = 5

_STATUS_COLOURS = {
    "complete": "#2e7d32",
    "complete_with_failures": "#ef6c00",
    "failed": "#c62828",
    "interrupted": "#607d8b",
}


def result_text(result: RunResult[Any]) -> str:
    """Return a one-line summary of a run.

    Examples
    --------
    >>> from datamultiproc.execution import RunResult
    >>> result_text(RunResult(wall_seconds=1.5, backend="process", workers=2))
    "RunResult(status='complete', ok=0, failed=0, wall_seconds=1.50, backend='process', workers=2)"
    """
    return (
        f"RunResult(status={result.status!r}, ok={result.n_ok}, failed={result.n_failed}, "
        f"wall_seconds={result.wall_seconds:.2f}, backend={result.backend!r}, "
        f"workers={result.workers})"
    )


def result_html(result: RunResult[Any]) -> str:
    """Return an HTML summary: counts, wall time, throughput, cache hit rates, first failures."""
    colour = _STATUS_COLOURS.get(result.status, "#555")
    rate = result.n_total / result.wall_seconds if result.wall_seconds > 0 else 0.0
    rows = [
        ("status", f'<b style="color:{colour}">{html.escape(result.status)}</b>'),
        ("samples", f"{result.n_ok:,} ok, {result.n_failed:,} failed"),
        ("wall time", f"{result.wall_seconds:.2f} s ({rate:,.1f} samples/s)"),
        ("backend", f"{html.escape(result.backend)}, {result.workers} worker(s)"),
    ]
    rows.extend(
        (
            f"cache {html.escape(stage)}",
            f"{s.hit_rate:.0%} hits ({s.hits:,} of {s.lookups:,}) in this run",
        )
        for stage, s in _cache_stats_by_stage(result).items()
        if s.lookups
    )
    body = "".join(
        f'<tr><th style="text-align:left;padding-right:1em">{name}</th>'
        f'<td style="text-align:left">{value}</td></tr>'
        for name, value in rows
    )
    return (
        '<div class="datamultiproc-result"><b>RunResult</b>'
        f"<table>{body}</table>{_failures_html(result)}</div>"
    )


def _cache_stats_by_stage(result: RunResult[Any]) -> dict[str, CacheStats]:
    steps = [step for record in result.records for step in record.steps]
    stages = dict.fromkeys(step.stage for step in steps if step.cache_hit is not None)
    return {stage: CacheStats.from_records(steps, stage=stage) for stage in stages}


def _failures_html(result: RunResult[Any]) -> str:
    if not result.failures:
        return ""
    items = "".join(
        f"<li><code>{html.escape(f.sample_id)}</code> in {html.escape(f.stage or 'no stage')}: "
        f"<b>{html.escape(f.error_type)}</b> {html.escape(f.message)}</li>"
        for f in result.failures[:MAX_FAILURES_SHOWN]
    )
    more = len(result.failures) - MAX_FAILURES_SHOWN
    tail = (
        f"<li>... and {more:,} more: see <code>result.failures_frame()</code></li>"
        if more > 0
        else ""
    )
    return f"<details open><summary>failures</summary><ul>{items}{tail}</ul></details>"
