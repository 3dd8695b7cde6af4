"""HTML display of a sample: a compact field table with array summaries and thumbnails.

Standard library and numpy only, no JavaScript: sections fold with ``<details>``,
colours come from JupyterLab's CSS variables (with fallbacks), so the display reads
in light and dark themes and stays legible where styles are stripped.
"""

from __future__ import annotations

import html
import math
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from pydantic import BaseModel

from datamultiproc.core._png import is_image, thumbnail_uri

__all__ = ["CSS", "array_summary", "sample_html", "value_html"]

#: Characters of a string shown before it is cut.
MAX_TEXT = 80
#: Items of a dict, list or nested model listed before "... and N more".
MAX_ITEMS = 20
#: Nesting levels of dicts and models shown.
MAX_DEPTH = 3
#: Stages named in a history summary line.
MAX_STAGES_INLINE = 6

CSS = """<style>
.dmp{font-family:var(--jp-code-font-family,monospace);font-size:var(--jp-code-font-size,12px);
color:var(--jp-content-font-color1,inherit);line-height:1.4}
.dmp-title{font-weight:bold;margin-bottom:2px}
.dmp-title .dmp-muted{font-weight:normal}
.dmp table{border-collapse:collapse;margin:0;color:inherit;font-size:inherit}
.dmp table th,.dmp table td{text-align:left!important;vertical-align:top;padding:2px 8px 2px 0;
border:none;background:transparent;white-space:nowrap;color:inherit;line-height:1.4}
.dmp tr{background:transparent!important}
.dmp-fields>tbody>tr{border-top:1px solid var(--jp-border-color2,rgba(128,128,128,.25))}
.dmp th{font-weight:bold}
.dmp-muted{color:var(--jp-content-font-color2,#888)}
.dmp-stats{display:block;white-space:normal;max-width:18em}
.dmp details>summary{cursor:pointer}
.dmp img{image-rendering:pixelated;border:1px solid var(--jp-border-color2,rgba(128,128,128,.4));
display:block;margin-top:2px}
.dmp svg{display:block;margin-top:2px}
.dmp-changed{background:rgba(255,152,0,.18)!important;box-shadow:inset 3px 0 0 #ff9800}
.dmp-error{color:var(--jp-error-color1,#d32f2f)}
.dmp pre{white-space:pre-wrap;margin:2px 0;font-size:11px}
.dmp td.dmp-wrap{white-space:normal;min-width:24em;max-width:48em}
</style>"""


def sample_html(sample: BaseModel) -> str:
    """Return the HTML display of a sample: its fields, then its processing history.

    Examples
    --------
    >>> from datamultiproc.core._sample import BaseSample
    >>> class Tile(BaseSample):
    ...     image: np.ndarray
    >>> text = sample_html(Tile(id="t1", image=np.zeros((4, 4))))
    >>> "<img" in text and "float64" in text
    True
    """
    fields = [name for name in type(sample).model_fields if name != "processing_history"]
    rows = "".join(
        f"<tr><th>{html.escape(name)}</th>"
        f'<td class="dmp-muted">{html.escape(_type_name(getattr(sample, name, None)))}</td>'
        f"<td>{value_html(getattr(sample, name, None))}</td></tr>"
        for name in fields
    )
    history = getattr(sample, "processing_history", None)
    return (
        f'<div class="dmp">{CSS}<div class="dmp-title">{html.escape(type(sample).__name__)}'
        f' <span class="dmp-muted">id={html.escape(repr(getattr(sample, "id", None)))}</span></div>'
        f'<table class="dmp-fields"><tbody>{rows}</tbody></table>'
        f"{history_html(history or [])}</div>"
    )


def history_html(history: Iterable[tuple[str, str]]) -> str:
    """Return the processing history as a one-line summary that unfolds into a list."""
    entries = list(history)
    if not entries:
        return '<div class="dmp-muted">history: not processed yet</div>'
    names = [stage for stage, _ in entries]
    inline = " → ".join(names[:MAX_STAGES_INLINE])
    if len(names) > MAX_STAGES_INLINE:
        inline += f" → … ({len(names) - MAX_STAGES_INLINE} more)"
    items = "".join(
        f"<li>{html.escape(stage)} <span class='dmp-muted'>{html.escape(_cut(params))}</span></li>"
        for stage, params in entries
    )
    return (
        f"<details><summary>history ({len(entries)}): {html.escape(inline)}</summary>"
        f"<ol>{items}</ol></details>"
    )


def value_html(value: Any, *, depth: int = 0, picture_size: int = 128) -> str:
    """Return the HTML of one field value (arrays get a summary and a picture)."""
    if isinstance(value, np.ndarray):
        return _array_html(value, picture_size)
    if isinstance(value, BaseModel):
        items = [(name, getattr(value, name, None)) for name in type(value).model_fields]
        return _folded(f"{type(value).__name__}, {len(items)} fields", items, depth)
    if isinstance(value, Mapping):
        return _folded(f"dict, {len(value)} keys", list(value.items()), depth)
    if isinstance(value, (list, tuple)) and not _is_short(value):
        return _folded(f"{type(value).__name__}, {len(value)} items", list(enumerate(value)), depth)
    if value is None:
        return '<span class="dmp-muted">None</span>'
    return html.escape(_cut(repr(value) if not isinstance(value, str) else value))


def array_summary(array: np.ndarray) -> str:
    """Return ``dtype shape`` and, for numbers, ``min``, ``max``, ``mean`` and the NaN count.

    Examples
    --------
    >>> array_summary(np.array([1.0, np.nan, 3.0]))
    'float64 (3,) min 1 max 3 mean 2 NaN 1'
    """
    text = f"{array.dtype} {array.shape}"
    if array.size == 0 or array.dtype.kind not in "biuf":
        return text
    values = array
    nan = 0
    if array.dtype.kind == "f":
        nan = int(np.count_nonzero(np.isnan(array)))
        if nan == array.size:
            return f"{text} all NaN"
        if nan:
            values = array[~np.isnan(array)]
    if array.dtype.kind == "b":
        return f"{text} true {int(np.count_nonzero(values))}"
    low, high, mean = values.min(), values.max(), values.mean(dtype=np.float64)
    text += f" min {_number(low)} max {_number(high)} mean {_number(mean)}"
    return f"{text} NaN {nan}" if nan else text


def _array_html(array: np.ndarray, size: int) -> str:
    # dtype and shape on one line, the statistics on the next: keeps columns narrow.
    head, _, stats = array_summary(array).partition(" min ")
    summary = html.escape(head) + (
        f" <span class='dmp-muted dmp-stats'>min {html.escape(stats)}</span>" if stats else ""
    )
    if is_image(array):
        return f"{summary}<div>{_image_tag(array, size)}</div>"  # a block, styled or not
    if array.ndim == 1 and array.size > 1 and array.dtype.kind in "biuf":
        return f"{summary}<div>{sparkline(array)}</div>"
    return summary


def _image_tag(array: np.ndarray, size: int) -> str:
    height, width = array.shape[:2]
    # Small arrays are drawn bigger (pixelated); large ones at the thumbnail's size.
    scale = size / max(height, width)
    shown_w, shown_h = max(1, round(width * scale)), max(1, round(height * scale))
    return (
        f'<img src="{thumbnail_uri(array, size)}" width="{shown_w}" height="{shown_h}" '
        f'alt="{height}x{width} image">'
    )


def sparkline(array: np.ndarray, width: int = 160, height: int = 28) -> str:
    """Return an inline SVG line of a 1-D array (at most ``width`` points; NaN leaves gaps)."""
    values = np.asarray(array, dtype=np.float64)
    if values.size > width:
        step = -(-values.size // width)
        padded = np.pad(values, (0, -values.size % step), constant_values=np.nan)
        with np.errstate(invalid="ignore"), _no_empty_warning():
            values = np.nanmean(padded.reshape(-1, step), axis=1)
    finite = np.isfinite(values)
    if not finite.any():
        return ""
    low, high = float(values[finite].min()), float(values[finite].max())
    span = high - low or 1.0
    xs = np.linspace(1, width - 1, values.size)
    ys = height - 2 - (values - low) / span * (height - 4)
    runs: list[list[str]] = [[]]
    for x, y, ok in zip(xs, ys, finite, strict=True):
        if ok:
            runs[-1].append(f"{x:.1f},{y:.1f}")
        elif runs[-1]:
            runs.append([])
    lines = "".join(
        f'<polyline points="{" ".join(run)}" fill="none" stroke="currentColor" stroke-width="1"/>'
        for run in runs
        if run
    )
    return (
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="line of {array.size} values">{lines}</svg>'
    )


def _folded(label: str, items: list[tuple[Any, Any]], depth: int) -> str:
    if depth >= MAX_DEPTH:
        return f'<span class="dmp-muted">{html.escape(label)}</span>'
    rows = "".join(
        f"<tr><th>{html.escape(_cut(str(key), 40))}</th>"
        f"<td>{value_html(item, depth=depth + 1, picture_size=64)}</td></tr>"
        for key, item in items[:MAX_ITEMS]
    )
    if len(items) > MAX_ITEMS:
        rows += (
            f'<tr><td class="dmp-muted" colspan="2">… and {len(items) - MAX_ITEMS} more</td></tr>'
        )
    return f"<details><summary>{html.escape(label)}</summary><table>{rows}</table></details>"


def _is_short(value: list[Any] | tuple[Any, ...]) -> bool:
    scalars = (bool, int, float, str, type(None))
    return len(value) <= 8 and all(isinstance(item, scalars) for item in value)


def _type_name(value: Any) -> str:
    return type(value).__name__ if value is not None else ""


def _cut(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else f"{text[: limit - 1]}… ({len(text):,} chars)"


def _number(value: Any) -> str:
    number = float(value)
    if math.isfinite(number) and number == int(number) and abs(number) < 1e15:
        return str(int(number))
    return f"{number:.4g}"


def _no_empty_warning() -> warnings.catch_warnings[None]:
    """Silence numpy's "Mean of empty slice" for all-NaN blocks."""
    catcher = warnings.catch_warnings()
    warnings.filterwarnings("ignore", "Mean of empty slice", RuntimeWarning)
    return catcher
