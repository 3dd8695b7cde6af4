"""An ipywidgets browser over the samples and failures of a run (``RunResult.browse()``)."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any, Literal

from datamultiproc.core import BaseSample, FailureRecord, SampleRecord
from datamultiproc.core._display import CSS, sample_html
from datamultiproc.notebook._progress import in_jupyter_kernel

if TYPE_CHECKING:
    from datamultiproc.execution import RunResult

__all__ = ["ResultBrowser", "browse"]

Filter = Literal["all", "ok", "failed"]


def browse(result: RunResult[Any]) -> Any:
    """Return a widget to browse ``result``: pick a sample, see it, its steps or its failure.

    Raises
    ------
    RuntimeError
        Outside a Jupyter kernel; the message names what to use instead.
    """
    if not in_jupyter_kernel():
        msg = (
            "result.browse() shows ipywidgets and needs a Jupyter kernel; outside one, use "
            "result.samples[i] (or print(sample)), result.failures or result.failures_frame(), "
            "and result.history()"
        )
        raise RuntimeError(msg)
    return ResultBrowser(result).widget


class ResultBrowser:
    """The widgets of a result browser, built without a kernel (so tests can drive them).

    Attributes
    ----------
    widget
        The whole browser (an ``ipywidgets.VBox``).
    show
        Filter buttons: ``"all"``, ``"ok"`` or ``"failed"``.
    pick
        Dropdown of the samples shown, labelled ``position · id · status``.
    find
        Text box: type an id or a position and press Enter to jump there.
    view
        The HTML of the picked sample or failure.
    """

    def __init__(self, result: RunResult[Any]) -> None:
        import ipywidgets as widgets  # noqa: TID251 (the notebook layer imports it lazily)

        self._records = {record.index: record for record in result.records}
        ok_indices = [record.index for record in result.records if record.status == "ok"]
        self._samples: dict[int, BaseSample] = dict(zip(ok_indices, result.samples, strict=False))
        self._failures: dict[int, FailureRecord] = {f.index: f for f in result.failures}
        counts = f"{len(self._samples):,} ok, {len(self._failures):,} failed"
        self.show = widgets.ToggleButtons(options=["all", "ok", "failed"], value="all")
        self.pick = widgets.Dropdown(description="sample", layout=widgets.Layout(width="28em"))
        self.find = widgets.Text(placeholder="id or position, then Enter", continuous_update=False)
        self.previous = widgets.Button(description="◀", layout=widgets.Layout(width="3em"))
        self.next = widgets.Button(description="▶", layout=widgets.Layout(width="3em"))
        self.view = widgets.HTML()
        self.show.observe(lambda _: self._refill(), names="value")
        self.pick.observe(lambda _: self._draw(), names="value")
        self.find.observe(lambda change: self.jump(change["new"]), names="value")
        self.previous.on_click(lambda _: self.step(-1))
        self.next.on_click(lambda _: self.step(1))
        header = widgets.HTML(f"<b>RunResult</b> {html.escape(result.status)}: {counts}")
        controls = widgets.HBox([self.previous, self.pick, self.next, self.find])
        self.widget = widgets.VBox([header, self.show, controls, self.view])
        self._refill()

    def jump(self, key: str) -> None:
        """Pick the sample with id ``key``, or at input position ``key`` (switching to "all")."""
        key = key.strip()
        index = next((i for i, r in self._records.items() if r.sample_id == key), None)
        if index is None and key.isdigit() and int(key) in self._records:
            index = int(key)
        if index is None:
            self.view.value = f"<i>no sample with id or position {html.escape(key)!s}</i>"
            return
        if index not in (value for _, value in self.pick.options):
            self.show.value = "all"
        self.pick.value = index

    def step(self, offset: int) -> None:
        """Pick the previous (``-1``) or next (``1``) sample in the list."""
        values = [value for _, value in self.pick.options]
        if values and self.pick.value in values:
            position = values.index(self.pick.value) + offset
            self.pick.value = values[max(0, min(position, len(values) - 1))]

    def _refill(self) -> None:
        wanted: Filter = self.show.value
        options = [
            (self._label(record), index)
            for index, record in sorted(self._records.items())
            if wanted == "all" or record.status == wanted
        ]
        self.pick.options = options
        self.pick.value = options[0][1] if options else None
        self._draw()

    def _label(self, record: SampleRecord) -> str:
        failure = self._failures.get(record.index)
        status = f"failed: {failure.error_type}" if failure else record.status
        return f"{record.index} · {record.sample_id} · {status}"

    def _draw(self) -> None:
        index = self.pick.value
        if index is None:
            self.view.value = "<i>no sample to show</i>"
            return
        record = self._records[index]
        failure = self._failures.get(index)
        sample = self._samples.get(index)
        top = _failure_html(failure) if failure else sample_html(sample) if sample else ""
        self.view.value = f"{top}{_steps_html(record)}"


def _failure_html(failure: FailureRecord) -> str:
    return (
        f'<div class="dmp">{CSS}<div class="dmp-title dmp-error">sample '
        f"{html.escape(failure.sample_id)!s} failed in {html.escape(failure.stage or 'no stage')}"
        f"</div><div><b>{html.escape(failure.error_type)}</b>: {html.escape(failure.message)}</div>"
        f"<div class='dmp-muted'>worker {html.escape(failure.worker)}</div>"
        f"<details open><summary>worker traceback</summary><pre>{html.escape(failure.traceback)}"
        "</pre></details></div>"
    )


def _steps_html(record: SampleRecord) -> str:
    if not record.steps:
        return ""
    rows = "".join(
        f"<tr><td>{step.step}</td><td>{html.escape(step.stage)}</td>"
        f"<td>{step.seconds * 1000:.3g} ms</td><td>{_cache(step.cache_hit)}</td>"
        f"<td>{html.escape(step.status)}</td></tr>"
        for step in record.steps
    )
    return (
        f'<div class="dmp"><details><summary>steps in this run ({len(record.steps)}, '
        f"worker {html.escape(record.worker)})</summary><table><tr><th>#</th><th>stage</th>"
        f"<th>time</th><th>cache</th><th>status</th></tr>{rows}</table></details></div>"
    )


def _cache(hit: bool | None) -> str:
    return "-" if hit is None else "hit" if hit else "miss"
