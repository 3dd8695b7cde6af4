from __future__ import annotations

from datamultiproc.core import FailureRecord
from datamultiproc.execution import RunResult
from datamultiproc.execution._repr import MAX_FAILURES_SHOWN
from tests.unit.notebook.records import cached_run


def test_text_repr_is_one_short_line() -> None:
    text = repr(cached_run())
    assert text == (
        "RunResult(status='failed', ok=0, failed=1, wall_seconds=2.00, backend='process', workers=2)"
    )


def test_html_repr_shows_counts_throughput_hit_rates_and_failures_escaped() -> None:
    page = cached_run()._repr_html_()
    assert "0 ok, 1 failed" in page
    assert "2.00 s (0.5 samples/s)" in page
    assert "cache Load" in page
    assert "50% hits (3 of 6)" in page
    assert "bad &lt;value&gt;" in page
    assert "<value>" not in page
    assert "#c62828" in page  # red for a failed run


def test_html_repr_lists_only_the_first_failures() -> None:
    failures = [
        FailureRecord(i, f"s{i}", "Scale", "ValueError", "bad", "tb", "w") for i in range(8)
    ]
    page = RunResult(failures=failures, status="failed")._repr_html_()
    assert page.count("<li><code>") == MAX_FAILURES_SHOWN
    assert "and 3 more" in page


def test_html_repr_of_an_empty_run() -> None:
    page = RunResult()._repr_html_()
    assert "complete" in page
    assert "failures" not in page
