"""HTML display of a Trace: stages side by side, changed fields highlighted."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from datamultiproc.core._display import CSS, value_html

if TYPE_CHECKING:
    from datamultiproc.core._trace import Trace

__all__ = ["trace_html"]

#: Size of the pictures in a trace's columns, in pixels.
PICTURE_SIZE = 96


def trace_html(trace: Trace) -> str:
    """Return a table with one column per stage (the input first) and one row per field.

    A stage's changed fields are highlighted; unchanged ones show ``=``. A
    failed stage gets a last column with the exception and its traceback.
    """
    fields = _field_names(trace)
    header = "<th></th><th>input</th>" + "".join(
        f"<th>{html.escape(step.stage)}<br><span class='dmp-muted'>{_seconds(step.seconds)} · "
        f"{html.escape(_cache(step.cache))}</span></th>"
        for step in trace.steps
    )
    if trace.error is not None:
        header += f"<th class='dmp-error'>{html.escape(trace.failed_stage or '')} ✗</th>"
    body = "".join(_row(trace, name, first=index == 0) for index, name in enumerate(fields))
    history_row = "<tr><th>history</th><td></td>" + "".join(
        f"<td class='dmp-muted'>+ {html.escape(step.stage)}</td>" for step in trace.steps
    )
    return (
        f'<div class="dmp">{CSS}<div class="dmp-title">Trace of '
        f"{html.escape(type(trace.input).__name__)} "
        f"<span class='dmp-muted'>id={html.escape(repr(getattr(trace.input, 'id', None)))}"
        f" · {_status(trace)}</span></div>"
        f'<div style="overflow-x:auto"><table class="dmp-fields"><thead><tr>{header}</tr></thead>'
        f"<tbody>{body}{history_row}</tr></tbody></table></div>{_not_run(trace)}</div>"
    )


def _row(trace: Trace, name: str, *, first: bool) -> str:
    cells = [f"<th>{html.escape(name)}</th><td>{_value(trace.input, name)}</td>"]
    for step in trace.steps:
        if name in step.changed:
            cells.append(f'<td class="dmp-changed">{_value(step.sample, name)}</td>')
        else:
            cells.append('<td class="dmp-muted" title="unchanged">=</td>')
    if trace.error is not None and first:
        rows = len(_field_names(trace)) + 1
        cells.append(f'<td class="dmp-wrap" rowspan="{rows}">{_error(trace)}</td>')
    return f"<tr>{''.join(cells)}</tr>"


def _value(sample: Any, name: str) -> str:
    return value_html(getattr(sample, name, None), picture_size=PICTURE_SIZE)


def _error(trace: Trace) -> str:
    error = trace.error
    return (
        f"<div class='dmp-error'><b>{html.escape(type(error).__name__)}</b>: "
        f"{html.escape(str(error))}</div><details><summary>traceback</summary>"
        f"<pre>{html.escape(trace.traceback)}</pre></details>"
    )


def _seconds(seconds: float) -> str:
    return f"{seconds * 1000:.3g} ms" if seconds < 1 else f"{seconds:.3g} s"


def _cache(status: str) -> str:
    return "not cached" if status == "-" else f"cache {status}"


def _status(trace: Trace) -> str:
    total = sum(step.seconds for step in trace.steps)
    if trace.error is not None:
        return (
            f"failed in {html.escape(trace.failed_stage or '?')} after {len(trace.steps)} stage(s)"
        )
    return f"{len(trace.steps)} stage(s), {_seconds(total)}"


def _not_run(trace: Trace) -> str:
    ran = len(trace.steps) + (trace.error is not None)
    rest = trace.stages[ran:]
    if not rest:
        return ""
    return f"<div class='dmp-muted'>not run: {html.escape(', '.join(rest))}</div>"


def _field_names(trace: Trace) -> list[str]:
    names = dict.fromkeys(type(trace.input).model_fields)
    for step in trace.steps:
        names.update(dict.fromkeys(type(step.sample).model_fields))
    names.pop("processing_history", None)
    return list(names)
