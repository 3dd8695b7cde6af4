"""The HTML table a :class:`~datamultiproc.storage.Plan` shows in a notebook (no JavaScript).

Colours come from the notebook's own text colour (``currentColor`` with
transparency), so the table reads in light and dark themes alike.
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datamultiproc.storage._plan import Plan

__all__ = ["plan_html"]

_STYLE = (
    "border-collapse:collapse;font-variant-numeric:tabular-nums;"
    "color:inherit;background:transparent"
)
_CELL = "padding:2px 10px;border-bottom:1px solid rgba(127,127,127,0.35);text-align:{align}"


def plan_html(plan: Plan) -> str:
    """Return a plan as an HTML table: one row per cached stage."""
    header = ("stage", "hits", "misses", "unknown", "est. worker seconds", "why they miss")
    rows = [_row(header, tag="th")]
    for stage in plan.stages:
        seconds = "-" if math.isnan(stage.estimated_seconds) else f"{stage.estimated_seconds:.3g}"
        ranked = sorted(stage.reasons.items(), key=lambda item: -item[1])
        reasons = "<br>".join(f"{html.escape(r)} ({count})" for r, count in ranked)
        cells = (
            html.escape(stage.stage),
            str(stage.hits),
            str(stage.misses),
            str(stage.unknown) if stage.unknown else "",
            seconds,
            reasons,
        )
        rows.append(_row(cells, tag="td", escape=False))
    title = f"Plan for {plan.samples} samples: nothing has run yet"
    return (
        f'<div class="datamultiproc-plan"><div style="font-weight:bold">{html.escape(title)}</div>'
        f'<table style="{_STYLE}">{"".join(rows)}</table></div>'
    )


def _row(cells: tuple[str, ...], *, tag: str, escape: bool = True) -> str:
    out = []
    for index, cell in enumerate(cells):
        align = "right" if 0 < index < 5 else "left"
        text = html.escape(cell) if escape else cell
        out.append(f'<{tag} style="{_CELL.format(align=align)}">{text}</{tag}>')
    return f"<tr>{''.join(out)}</tr>"
