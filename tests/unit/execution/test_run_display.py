"""Rough edges of a run's display: where warnings point, imap's failures, totals, statuses."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from datamultiproc import Cache, Compose, RunResult, run
from datamultiproc.exceptions import FailuresWarning
from datamultiproc.execution import RunIterator, RunStarted, imap
from tests.helpers import AddStep, FailOn, NumberSample, number_samples

BACKENDS = ["sequential", "thread"]


class RecordingSink:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def handle(self, event: Any) -> None:
        self.events.append(event)


def _warnings_of(call: Any) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return [w for w in caught if issubclass(w.category, FailuresWarning)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_failures_warning_points_at_the_callers_line(backend: str) -> None:
    samples = number_samples(3)
    calls = {
        "run": lambda: run(FailOn(ids=["s1"]), samples, backend=backend, progress=False),
        "Processor.run": lambda: FailOn(ids=["s1"]).run(samples, backend=backend, progress=False),
        "imap": lambda: list(imap(FailOn(ids=["s1"]), samples, backend=backend, progress=False)),
        "unordered imap": lambda: list(
            FailOn(ids=["s1"]).imap(samples, backend=backend, progress=False, ordered=False)
        ),
    }
    for name, call in calls.items():
        (caught,) = _warnings_of(call)
        assert caught.filename == __file__, name


def test_imap_failures_are_on_the_iterator_and_the_warning_says_so() -> None:
    it = imap(FailOn(ids=["s1", "s3"]), number_samples(5), backend="sequential", progress=False)
    assert isinstance(it, RunIterator)
    assert next(it).id == "s0"
    assert it.status == "running"
    with pytest.warns(FailuresWarning, match="see .failures on the iterator imap"):
        rest = list(it)
    assert [s.id for s in rest] == ["s2", "s4"]
    assert [(f.index, f.sample_id, f.stage) for f in it.failures] == [
        (1, "s1", "FailOn"),
        (3, "s3", "FailOn"),
    ]
    assert it.status == "complete_with_failures"


def test_an_imap_closed_early_is_interrupted() -> None:
    it = AddStep().imap(number_samples(50), backend="thread", progress=False, workers=2)
    assert isinstance(it, RunIterator)
    next(it)
    it.close()
    assert it.status == "interrupted"
    assert it.failures == []


def _generator(count: int) -> Iterator[NumberSample]:
    yield from number_samples(count)


class _Sized:
    """An input with a len() that is not a list."""

    def __init__(self, count: int) -> None:
        self.samples = number_samples(count)

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[NumberSample]:
        return iter(self.samples)


@pytest.mark.parametrize(
    ("samples", "hint", "total"),
    [(_generator(4), None, None), (_generator(4), 4, 4), (_Sized(3), None, 3), (_Sized(3), 10, 3)],
)
def test_total_hint_reaches_the_display_when_the_input_has_no_len(
    samples: Any, hint: int | None, total: int | None
) -> None:
    sink = RecordingSink()
    run(AddStep(), samples, backend="sequential", progress=sink, total=hint)
    started = sink.events[0]
    assert isinstance(started, RunStarted)
    assert started.total == total


def test_imap_takes_a_total_hint_too() -> None:
    sink = RecordingSink()
    list(imap(AddStep(), _generator(3), backend="sequential", progress=sink, total=3))
    assert sink.events[0].total == 3


@pytest.mark.parametrize(("hint", "error"), [(-1, ValueError), (2.5, TypeError), (True, TypeError)])
def test_a_bad_total_is_refused(hint: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="total must be a number of samples"):
        run(AddStep(), _generator(1), backend="sequential", progress=False, total=hint)


def test_completed_with_failures_is_not_stopped_and_is_coloured_differently() -> None:
    with pytest.warns(FailuresWarning):
        partial = FailOn(ids=["s1"]).run(number_samples(3), backend="sequential", progress=False)
    assert partial.status == "complete_with_failures"
    stopped: RunResult[NumberSample] = RunResult(status="interrupted")
    orange, grey = "#ef6c00", "#607d8b"
    assert orange in partial._repr_html_()
    assert orange not in stopped._repr_html_()
    assert grey in stopped._repr_html_()
    assert "complete_with_failures" in repr(partial)


def test_run_and_cache_counts_say_which_is_per_run(tmp_path: Any) -> None:
    cache = Cache(processor=AddStep(), cache_dir=tmp_path)
    pipeline = Compose(cache)
    run(pipeline, number_samples(2), backend="sequential", progress=False)
    second = run(pipeline, number_samples(2), backend="sequential", progress=False)
    assert "100% hits (2 of 2) in this run" in second._repr_html_()
    assert (cache.stats.hits, cache.stats.misses) == (2, 2)  # both runs
    assert "every run in this process" in (type(cache).stats.__doc__ or "")
    assert "this run only" in (RunResult.cache_stats.__doc__ or "")
