"""Progress displays: an ipywidgets panel in notebooks, a tqdm bar elsewhere.

The runner creates one with :func:`create_progress_sink` and feeds it events in
the parent process (:mod:`datamultiproc.execution._events`). Counting an event
is cheap; drawing is throttled to a few times a second, so that a 100,000-sample
run neither slows down nor floods the kernel's comm channel, and the final state
is always drawn. ipywidgets, IPython and tqdm are imported only when a display is
created.
"""

from __future__ import annotations

import html
import importlib.util
import sys
import threading
import time
import warnings
from typing import IO, Any, Literal

from datamultiproc.exceptions import DatamultiprocWarning
from datamultiproc.execution import ProgressSink, RunEvent, RunFinished, RunStarted, SampleFinished
from datamultiproc.notebook._state import ProgressState
from datamultiproc.notebook._stop import watch_clicks

__all__ = ["TextProgress", "WidgetProgress", "create_progress_sink", "in_jupyter_kernel"]

#: Seconds between two redraws of a display while a run goes on.
MIN_INTERVAL = 0.2

_BAR_STYLES = {
    "complete": "success",
    "complete_with_failures": "warning",
    "failed": "danger",
    "interrupted": "",  # and a grey bar colour: stopped, neither an error nor done
}
#: Bar colour of a stopped run (no bar style is grey).
INTERRUPTED_COLOUR = "#78909c"
_TEXT_COLOURS = {
    "complete": "green",
    "complete_with_failures": "yellow",
    "failed": "red",
    "interrupted": "blue",
}


def create_progress_sink(
    mode: Literal["auto", "widget", "text"] = "auto", *, stop: threading.Event | None = None
) -> ProgressSink:
    """Return a progress display for a run.

    Parameters
    ----------
    mode
        ``"widget"``: an ipywidgets panel; ``"text"``: a tqdm bar on stderr;
        ``"auto"`` (default): the panel inside a Jupyter kernel with ipywidgets
        installed, else the bar.
    stop
        Set when the user presses the panel's Stop button; the runner polls it.
        Without it the panel has no Stop button.

    Returns
    -------
    ProgressSink
        A :class:`WidgetProgress` or a :class:`TextProgress`.

    Raises
    ------
    ValueError
        If ``mode`` is not one of the above.

    Examples
    --------
    >>> create_progress_sink("text")
    TextProgress(0 samples · 0.0 samples/s · 0:00 elapsed)
    """
    if mode not in ("auto", "widget", "text"):
        msg = f"mode must be 'auto', 'widget' or 'text', not {mode!r}"
        raise ValueError(msg)
    if mode == "auto":
        widgets = in_jupyter_kernel() and importlib.util.find_spec("ipywidgets") is not None
        mode = "widget" if widgets else "text"
    return WidgetProgress(stop=stop) if mode == "widget" else TextProgress()


def in_jupyter_kernel() -> bool:
    """Whether this code runs in a Jupyter kernel (checked without importing IPython)."""
    ipython = sys.modules.get("IPython")
    get_ipython = getattr(ipython, "get_ipython", None)
    shell = get_ipython() if get_ipython is not None else None
    return getattr(shell, "kernel", None) is not None


class _Display:
    """Shared event handling: count every event, draw at most every ``min_interval``."""

    def __init__(self, *, min_interval: float = MIN_INTERVAL) -> None:
        self.state = ProgressState()
        self.min_interval = min_interval
        self._last_draw = 0.0
        self._broken = False

    def handle(self, event: RunEvent) -> None:
        """Consume one event; a display error is reported once and never stops the run."""
        if self._broken:
            return
        try:
            self._handle(event)
        except Exception as exc:
            self._broken = True
            msg = f"progress display turned off after an error: {type(exc).__name__}: {exc}"
            warnings.warn(msg, DatamultiprocWarning, stacklevel=2)

    def _handle(self, event: RunEvent) -> None:
        self.state.update(event)
        if isinstance(event, SampleFinished):
            now = time.monotonic()
            if now - self._last_draw >= self.min_interval:
                self._last_draw = now
                self._draw()
        elif isinstance(event, RunStarted):
            self._start()
            self._last_draw = time.monotonic()
        elif isinstance(event, RunFinished):
            self._finish(event)

    def _start(self) -> None:
        raise NotImplementedError

    def _draw(self) -> None:
        raise NotImplementedError

    def _finish(self, event: RunFinished) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.state.summary()})"


class TextProgress(_Display):
    """A tqdm bar for terminals and scripts, with the failure count beside it.

    Parameters
    ----------
    file
        Where to write; default ``sys.stderr``. With no such stream, nothing is shown.
    min_interval
        Seconds between redraws.

    Examples
    --------
    >>> import io
    >>> from datamultiproc.core import SampleRecord
    >>> from datamultiproc.execution import RunFinished, RunStarted, SampleFinished
    >>> display = TextProgress(file=io.StringIO())
    >>> display.handle(RunStarted(total=1, stages=("Load",), backend="thread", workers=1))
    >>> display.handle(SampleFinished(SampleRecord(0, "a", "main", "ok", ())))
    >>> display.handle(RunFinished("complete", done=1, failed=0, seconds=0.5))
    >>> display.state.done
    1
    """

    def __init__(self, *, file: IO[str] | None = None, min_interval: float = MIN_INTERVAL) -> None:
        super().__init__(min_interval=min_interval)
        self.file = file
        self.bar: Any = None

    def _start(self) -> None:
        from tqdm.std import tqdm

        if self.bar is not None:
            self.bar.close()
        file = self.file if self.file is not None else sys.stderr
        self.bar = tqdm(
            total=self.state.total,
            unit="sample",
            file=file,
            disable=file is None,
            mininterval=self.min_interval,
            dynamic_ncols=True,
            desc=self.state.backend or None,
        )

    def _draw(self) -> None:
        if self.bar is None:
            return
        if self.state.failed:
            self.bar.set_postfix_str(f"{self.state.failed:,} failed", refresh=False)
        self.bar.update(self.state.finished_samples - self.bar.n)

    def _finish(self, event: RunFinished) -> None:
        if self.bar is None:
            return
        self._draw()
        self.bar.colour = _TEXT_COLOURS.get(event.status)
        self.bar.set_description(event.status, refresh=False)
        self.bar.close()


class WidgetProgress(_Display):
    """An ipywidgets panel: an overall bar, a line of counts, a table of stages, a Stop button.

    The bar goes green when every sample succeeded, red when some failed and
    orange when the run was interrupted; the panel stays in the notebook after the
    run. Its widgets carry the CSS classes ``datamultiproc-progress`` (the panel),
    ``datamultiproc-progress-bar``, ``datamultiproc-progress-summary``,
    ``datamultiproc-progress-stages`` and ``datamultiproc-progress-stop``.

    Parameters
    ----------
    stop
        Set when the Stop button is pressed; without it the panel has no button.
    min_interval
        Seconds between redraws.
    display
        Show the panel when the run starts (only inside a Jupyter kernel).

    Attributes
    ----------
    widget
        The panel, an ``ipywidgets.VBox``.
    stop_while_busy
        Whether a click on Stop is seen while the run blocks the kernel; see
        :mod:`datamultiproc.notebook._stop`.
    """

    def __init__(
        self,
        *,
        stop: threading.Event | None = None,
        min_interval: float = MIN_INTERVAL,
        display: bool = True,
    ) -> None:
        import ipywidgets as widgets  # noqa: TID251 (the notebook layer imports it lazily)

        super().__init__(min_interval=min_interval)
        self.stop = stop
        self.display = display
        # CSS classes set at creation, so that the comm_open message already carries them.
        self.bar = widgets.IntProgress(
            value=0, min=0, max=1, bar_style="info", _dom_classes=_css("progress-bar")
        )
        self.bar.layout.width = "60%"
        self.summary = widgets.HTML("starting…", _dom_classes=_css("progress-summary"))
        self.stages = widgets.HTML("", _dom_classes=_css("progress-stages"))
        self.button = widgets.Button(
            description="Stop",
            icon="stop",
            tooltip="Stop the run",
            _dom_classes=_css("progress-stop"),
        )
        self.stop_while_busy = stop is not None and watch_clicks(self.button, stop)
        if stop is None:
            self.button.layout.display = "none"
        elif not self.stop_while_busy:
            self.button.tooltip = "Stop the run (if this kernel cannot see it, interrupt it)"
        top = widgets.HBox([self.bar, self.button])
        self.widget = widgets.VBox([top, self.summary, self.stages], _dom_classes=_css("progress"))

    def _start(self) -> None:
        self.bar.max = max(self.state.total or 0, 1)
        self.bar.value = 0
        self.bar.bar_style = "info"
        self._draw()
        if self.display and in_jupyter_kernel():
            _show(self.widget)

    def _draw(self) -> None:
        state = self.state
        if state.total is not None:
            self.bar.value = min(state.finished_samples, self.bar.max)
        if state.failed and state.finished is None:
            self.bar.bar_style = "warning"  # some samples failed; the run goes on
        self.summary.value = html.escape(state.summary())
        self.stages.value = _stage_table(state)
        if self.stop is not None and self.stop.is_set() and state.finished is None:
            self.button.description = "Stopping…"
            self.button.disabled = True

    def _finish(self, event: RunFinished) -> None:
        if self.state.total is None:
            # Unknown total: the bar could not move during the run; show it full now.
            self.bar.max = max(self.state.finished_samples, 1)
        self._draw()
        self.bar.value = self.state.finished_samples
        self.bar.bar_style = _BAR_STYLES.get(event.status, "info")
        if event.status == "interrupted":
            self.bar.style.bar_color = INTERRUPTED_COLOUR
        self.summary.value = f"<b>{html.escape(self.state.summary())}</b>"
        self.button.layout.display = "none"

    def _ipython_display_(self) -> None:
        _show(self.widget)


def _css(name: str) -> tuple[str]:
    return (f"datamultiproc-{name}",)


def _show(widget: Any) -> None:
    import IPython.display

    display: Any = IPython.display.display  # untyped in some IPython versions
    display(widget)


def _stage_table(state: ProgressState) -> str:
    """Render one row per stage: steps done and failed, cache hits and misses."""
    if not state.stages:
        return ""
    head = "".join(
        f'<th style="text-align:{align};padding:0 .8em">{name}</th>'
        for name, align in [
            ("stage", "left"),
            ("done", "right"),
            ("failed", "right"),
            ("cache hits", "right"),
            ("misses", "right"),
        ]
    )
    rows = []
    for name, tally in state.stages.items():
        cells = [str(tally.done), str(tally.failed)]
        cells += [str(tally.hits), str(tally.misses)] if tally.cached else ["-", "-"]
        failed_style = ";color:#c62828" if tally.failed else ""
        rows.append(
            f'<tr><td style="padding:0 .8em">{html.escape(name)}</td>'
            + "".join(
                f'<td style="text-align:right;padding:0 .8em{failed_style if i == 1 else ""}">'
                f"{cell}</td>"
                for i, cell in enumerate(cells)
            )
            + "</tr>"
        )
    return f'<table style="font-size:90%"><tr>{head}</tr>{"".join(rows)}</table>'
