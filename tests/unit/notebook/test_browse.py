"""RunResult.browse(): the widgets, built headless, and the error outside a kernel."""

from __future__ import annotations

import numpy as np
import pytest

from datamultiproc import Compose, RunResult
from datamultiproc.notebook._browse import ResultBrowser
from tests.helpers import AddStep, ArraySample, FailOn


def _result() -> RunResult[ArraySample]:
    samples = [ArraySample(id=f"t{i}", data=i, array=np.full((4, 4), i)) for i in range(5)]
    pipeline = Compose(AddStep(), FailOn(ids=["t1", "t3"]))
    result: RunResult[ArraySample] = pipeline.run(
        samples, backend="sequential", progress=False, on_error="skip"
    )
    return result


def test_browser_lists_every_sample_and_shows_the_first() -> None:
    browser = ResultBrowser(_result())
    labels = [label for label, _ in browser.pick.options]
    assert labels == [
        "0 · t0 · ok",
        "1 · t1 · failed: ValueError",
        "2 · t2 · ok",
        "3 · t3 · failed: ValueError",
        "4 · t4 · ok",
    ]
    assert browser.pick.value == 0
    assert "ArraySample" in browser.view.value
    assert "<img" in browser.view.value
    assert "steps in this run (2" in browser.view.value
    assert browser.widget.children[0].value.startswith("<b>RunResult</b> complete_with_failures")


def test_filter_jump_and_step_pick_samples_and_failures() -> None:
    browser = ResultBrowser(_result())
    browser.show.value = "failed"
    assert [value for _, value in browser.pick.options] == [1, 3]
    page = browser.view.value
    assert "sample t1 failed in FailOn" in page
    assert "ValueError</b>: bad sample t1" in page
    assert "worker traceback" in page
    assert "raise ValueError(msg)" in page
    browser.step(1)
    assert browser.pick.value == 3
    browser.step(1)
    assert browser.pick.value == 3  # stays on the last
    browser.find.value = "t4"  # an ok sample while showing failures: back to "all"
    assert (browser.show.value, browser.pick.value) == ("all", 4)
    browser.find.value = "2"  # a position
    assert browser.pick.value == 2
    browser.find.value = "nope"
    assert "no sample with id or position nope" in browser.view.value
    browser.show.value = "ok"
    assert [value for _, value in browser.pick.options] == [0, 2, 4]


def test_an_empty_result_shows_a_note() -> None:
    browser = ResultBrowser(RunResult())
    assert browser.pick.value is None
    assert "no sample to show" in browser.view.value


def test_outside_a_kernel_browse_says_what_to_use_instead() -> None:
    with pytest.raises(
        RuntimeError, match=r"needs a Jupyter kernel.*result\.samples\[i\].*failures_frame"
    ):
        _result().browse()
