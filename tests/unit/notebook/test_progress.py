"""Progress displays driven headless, by feeding them the runner's events."""

from __future__ import annotations

import io
import threading
from types import SimpleNamespace
from typing import Any

import pytest

from datamultiproc import DatamultiprocWarning
from datamultiproc.core import FailureRecord, SampleRecord, StepRecord
from datamultiproc.execution import RunFinished, RunStarted, SampleFinished
from datamultiproc.notebook import (
    TextProgress,
    WidgetProgress,
    create_progress_sink,
    in_jupyter_kernel,
)
from datamultiproc.notebook._progress import INTERRUPTED_COLOUR
from datamultiproc.notebook._stop import is_click, watch_clicks
from datamultiproc.notebook._tallies import occurrence_keys

STAGES = ("Load", "Add", "Add")


def sample_event(index: int, *, fail: bool = False, hit: bool | None = None) -> SampleFinished:
    steps = (
        StepRecord(0, "Load", "", 0.1, cache_hit=hit),
        StepRecord(1, "Add", "step_size=1", 0.1),
        StepRecord(2, "Add", "step_size=2", 0.1, status="failed" if fail else "ok"),
    )
    status = "failed" if fail else "ok"
    record = SampleRecord(index, f"s{index}", "process-1", status, steps)
    failure = FailureRecord(index, f"s{index}", "Add", "ValueError", "bad", "tb", "process-1")
    return SampleFinished(record, failure if fail else None)


def feed(sink: Any, total: int | None, count: int, *, failing: tuple[int, ...] = ()) -> None:
    sink.handle(RunStarted(total=total, stages=STAGES, backend="process", workers=2))
    for index in range(count):
        sink.handle(sample_event(index, fail=index in failing, hit=index % 2 == 0))


def test_widget_ends_green_at_the_total_with_one_row_per_stage() -> None:
    display = WidgetProgress(stop=threading.Event(), min_interval=0)
    feed(display, total=4, count=4)
    assert display.bar.value == 4
    assert display.bar.max == 4
    display.handle(RunFinished("complete", done=4, failed=0, seconds=2.0))
    assert display.bar.bar_style == "success"
    assert "Complete" in display.summary.value
    assert "4/4 samples" in display.summary.value
    table = display.stages.value
    assert [row.split("</td>")[0] for row in table.split('<td style="padding:0 .8em">')[1:]] == [
        "Load",
        "Add",
        "Add (2)",
    ]
    assert display.button.layout.display == "none"  # nothing left to stop
    assert "Complete" in repr(display)


def test_widget_turns_orange_on_failures_and_red_if_the_run_fails() -> None:
    display = WidgetProgress(min_interval=0)
    feed(display, total=5, count=5, failing=(1, 3))
    assert display.bar.bar_style == "warning"
    assert display.state.stages["Add (2)"].failed == 2
    assert display.state.stages["Load"].hits == 3
    assert display.state.stages["Load"].misses == 2
    display.handle(RunFinished("failed", done=3, failed=2, seconds=1.0))
    assert display.bar.bar_style == "danger"
    assert display.bar.value == 5
    assert "Failed" in display.summary.value
    assert "2 failed" in display.summary.value


def test_a_run_that_completed_with_failures_is_orange_not_red() -> None:
    display = WidgetProgress(min_interval=0)
    feed(display, total=5, count=5, failing=(1,))
    display.handle(RunFinished("complete_with_failures", done=4, failed=1, seconds=1.0))
    assert display.bar.bar_style == "warning"
    assert "Complete with failures" in display.summary.value


def test_widget_draws_a_few_times_a_second_but_always_the_final_state() -> None:
    display = WidgetProgress(min_interval=3600)
    feed(display, total=1000, count=1000)
    assert display.state.done == 1000
    assert display.bar.value == 0  # counted, not drawn: no comm message per sample
    display.handle(RunFinished("complete", done=1000, failed=0, seconds=1.0))
    assert display.bar.value == 1000


def test_widget_with_unknown_total_fills_the_bar_at_the_end() -> None:
    display = WidgetProgress(min_interval=0)
    feed(display, total=None, count=7)
    assert display.bar.value == 0
    assert "7 samples" in display.summary.value
    assert "left" not in display.summary.value
    display.handle(RunFinished("complete", done=7, failed=0, seconds=1.0))
    assert (display.bar.value, display.bar.max) == (7, 7)


def test_stop_button_sets_the_event_and_the_panel_ends_interrupted() -> None:
    stop = threading.Event()
    display = WidgetProgress(stop=stop, min_interval=0)
    feed(display, total=10, count=3)
    display.button.click()
    assert stop.is_set()
    display.handle(sample_event(3))
    assert display.button.description == "Stopping…"
    assert display.button.disabled
    display.handle(RunFinished("interrupted", done=4, failed=0, seconds=1.0))
    assert display.bar.bar_style == ""
    assert display.bar.style.bar_color == INTERRUPTED_COLOUR
    assert display.bar.value == 4
    assert display.bar.max == 10
    assert "Interrupted" in display.summary.value


def test_without_a_stop_event_there_is_no_button() -> None:
    display = WidgetProgress()
    assert display.button.layout.display == "none"
    assert not display.stop_while_busy


def test_watch_clicks_sees_clicks_in_the_kernels_shell_channel_thread() -> None:
    routed: list[Any] = []

    def reply_subshell_for(data: Any, default: Any) -> Any:
        routed.append(data)
        return default

    comm = SimpleNamespace(
        kernel=SimpleNamespace(shell_channel_thread=object()),
        _reply_subshell_for=reply_subshell_for,
    )
    button = SimpleNamespace(comm=comm, on_click=lambda callback: None)
    stop = threading.Event()
    assert watch_clicks(button, stop)
    assert comm._reply_subshell_for({"method": "update"}, "main") == "main"
    assert not stop.is_set()
    comm._reply_subshell_for({"method": "custom", "content": {"event": "click"}}, None)
    assert stop.is_set()
    assert len(routed) == 2  # messages still routed as before


def test_watch_clicks_without_a_kernel_falls_back_to_on_click() -> None:
    callbacks: list[Any] = []
    button = SimpleNamespace(comm=None, on_click=callbacks.append)
    stop = threading.Event()
    assert not watch_clicks(button, stop)
    callbacks[0](button)
    assert stop.is_set()


def test_is_click() -> None:
    assert is_click({"method": "custom", "content": {"event": "click"}})
    assert not is_click({"method": "custom", "content": {"event": "other"}})
    assert not is_click(None)


def test_text_progress_writes_a_tqdm_bar_with_the_final_state() -> None:
    out = io.StringIO()
    display = TextProgress(file=out, min_interval=0)
    feed(display, total=4, count=4, failing=(2,))
    display.handle(RunFinished("failed", done=3, failed=1, seconds=1.0))
    text = out.getvalue()
    assert "4/4" in text
    assert "1 failed" in text
    assert "failed:" in text


def test_text_progress_without_a_stream_shows_nothing_and_does_not_break(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("sys.stderr", None)
    display = TextProgress()
    feed(display, total=2, count=2)
    display.handle(RunFinished("complete", done=2, failed=0, seconds=1.0))
    assert display.state.done == 2


def test_a_display_error_warns_once_and_never_stops_the_run() -> None:
    display = TextProgress(file=io.StringIO())
    display._start = lambda: 1 / 0  # type: ignore[method-assign,assignment]
    with pytest.warns(DatamultiprocWarning, match="progress display turned off"):
        feed(display, total=2, count=2)
    display.handle(RunFinished("complete", done=2, failed=0, seconds=1.0))  # ignored, no raise


def test_auto_mode_is_text_outside_a_kernel() -> None:
    assert not in_jupyter_kernel()
    assert isinstance(create_progress_sink(), TextProgress)
    assert isinstance(create_progress_sink("text"), TextProgress)
    assert isinstance(create_progress_sink("widget", stop=threading.Event()), WidgetProgress)


def test_a_forced_widget_outside_a_kernel_shows_nothing_and_does_not_break(
    capsys: pytest.CaptureFixture[str],
) -> None:
    display = create_progress_sink("widget", stop=threading.Event())
    feed(display, total=3, count=3)
    display.handle(RunFinished("complete", done=3, failed=0, seconds=1.0))
    assert capsys.readouterr() == ("", "")


def test_auto_mode_is_widget_inside_a_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_ipython = SimpleNamespace(get_ipython=lambda: SimpleNamespace(kernel=object()))
    monkeypatch.setitem(__import__("sys").modules, "IPython", fake_ipython)
    assert in_jupyter_kernel()
    assert isinstance(create_progress_sink(), WidgetProgress)


def test_unknown_mode_is_rejected() -> None:
    with pytest.raises(ValueError, match="mode must be"):
        create_progress_sink("html")  # type: ignore[arg-type]


def test_occurrence_keys_number_repeated_stages() -> None:
    assert occurrence_keys(["A", "A", "B", "A"]) == ["A", "A (2)", "B", "A (3)"]
