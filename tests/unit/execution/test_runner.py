"""run() and imap() on in-process backends: results, records, errors, events, options."""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import gc
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pytest

import datamultiproc
from datamultiproc import Cache, Compose, ProcessingError, run
from datamultiproc.exceptions import FailuresWarning
from datamultiproc.execution import RunFinished, RunStarted, SampleFinished, imap
from datamultiproc.execution._job import usable_cores
from datamultiproc.execution._runner import RemoteTraceback, _gc_paused
from tests.helpers import AddStep, DoubleStep, FailOn, NumberSample, SetupLog, number_samples

BACKENDS = ["sequential", "thread"]


class RecordingSink:
    def __init__(self, stop_after: int | None = None, stop: threading.Event | None = None) -> None:
        self.events: list[Any] = []
        self.stop_after = stop_after
        self.stop = stop

    def handle(self, event: Any) -> None:
        self.events.append(event)
        finished = sum(isinstance(e, SampleFinished) for e in self.events)
        if self.stop is not None and self.stop_after is not None and finished >= self.stop_after:
            self.stop.set()


@pytest.mark.parametrize("backend", BACKENDS)
def test_run_returns_samples_in_input_order_with_records(backend: str) -> None:
    pipeline = Compose(AddStep(), DoubleStep())
    result = pipeline.run(number_samples(30), backend=backend, workers=3, progress=False)
    assert [s.data for s in result] == [(i + 1) * 2 for i in range(30)]
    assert result.status == "complete"
    assert result.n_ok == 30
    assert result.n_failed == 0
    assert len(result) == 30
    assert [r.index for r in result.records] == list(range(30))
    record = result.records[4]
    assert record.sample_id == "s4"
    assert record.status == "ok"
    assert [step.stage for step in record.steps] == ["AddStep", "DoubleStep"]
    assert all(step.seconds >= 0 and step.cache_hit is None for step in record.steps)
    assert result.backend == backend
    assert result.wall_seconds > 0


def test_single_processor_and_function_run_like_a_pipeline() -> None:
    result = AddStep(step_size=5).run(number_samples(3), backend="sequential", progress=False)
    assert [s.data for s in result] == [5, 6, 7]

    def triple(sample: NumberSample) -> NumberSample:
        sample.data = sample.data * 3
        return sample

    result = run(triple, number_samples(3), backend="sequential", progress=False)
    assert [s.data for s in result] == [0, 3, 6]


@pytest.mark.parametrize("backend", BACKENDS)
def test_collect_records_failures_and_warns_once(backend: str) -> None:
    pipeline = Compose(AddStep(), FailOn(ids=["s2", "s5"]))
    with pytest.warns(FailuresWarning, match="2 of 8 samples failed"):
        result = pipeline.run(number_samples(8), backend=backend, progress=False)
    assert [s.id for s in result] == ["s0", "s1", "s3", "s4", "s6", "s7"]
    assert result.status == "complete_with_failures"
    failure = result.failures[0]
    assert (failure.index, failure.sample_id, failure.stage) == (2, "s2", "FailOn")
    assert (failure.error_type, failure.message) == ("ValueError", "bad sample s2")
    assert "Traceback" in failure.traceback
    assert "bad sample s2" in failure.traceback
    assert result.records[2].status == "failed"
    assert result.records[2].steps[-1].status == "failed"


def test_skip_does_not_warn(recwarn: pytest.WarningsRecorder) -> None:
    result = FailOn(ids=["s1"]).run(
        number_samples(3), backend="sequential", progress=False, on_error="skip"
    )
    assert result.n_failed == 1
    assert not recwarn.list


@pytest.mark.parametrize("backend", BACKENDS)
def test_raise_stops_at_first_failure_with_the_traceback(backend: str) -> None:
    with pytest.raises(ProcessingError, match="'s1' failed in FailOn: ValueError") as info:
        FailOn(ids=["s1"]).run(
            number_samples(50), backend=backend, progress=False, on_error="raise"
        )
    assert info.value.sample_id == "s1"
    assert info.value.processor == "FailOn"
    assert isinstance(info.value.__cause__, RemoteTraceback)
    assert "bad sample s1" in str(info.value.__cause__)


def test_list_input_is_checked_before_any_work() -> None:
    sink = RecordingSink()
    samples: list[Any] = [*number_samples(3), NumberSample(id="s1", data=9)]
    with pytest.raises(ValueError, match="duplicate sample id 's1'"):
        run(AddStep(), samples, backend="sequential", progress=sink)
    mixed: list[Any] = [NumberSample(id="a", data=1), 5]
    with pytest.raises(TypeError, match=r"samples\[1\] is a int"):
        run(AddStep(), mixed, backend="sequential", progress=sink)
    assert sink.events == []
    assert samples[0].data == 0  # nothing ran


def test_generator_input_turns_bad_items_into_failures_without_running_them(
    tmp_path: Path,
) -> None:
    def samples() -> Iterator[Any]:
        yield from number_samples(3)
        yield NumberSample(id="s1", data=100)
        yield "not a sample"
        yield NumberSample(id="s9", data=9)

    pipeline = Cache(processor=AddStep(), cache_dir=tmp_path)  # a repeated id would clash
    with pytest.warns(FailuresWarning, match="2 of 6"):
        result = run(pipeline, samples(), backend="sequential", progress=False)
    assert [s.id for s in result] == ["s0", "s1", "s2", "s9"]
    assert result.samples[1].data == 2  # the first s1, not the repeat
    duplicate, not_sample = result.failures
    assert duplicate.index == 3
    assert "duplicate sample id 's1'" in duplicate.message
    assert not_sample.index == 4
    assert not_sample.error_type == "TypeError"
    with pytest.raises(ValueError, match="duplicate sample id 's1'"):
        run(pipeline, samples(), backend="sequential", progress=False, on_error="raise")


def test_repeated_ids_in_a_generator_run_when_nothing_is_stored() -> None:
    def samples() -> Iterator[Any]:
        yield from number_samples(3)
        yield NumberSample(id="s1", data=100)

    result = run(AddStep(), samples(), backend="sequential", progress=False)
    assert [(s.id, s.data) for s in result] == [("s0", 1), ("s1", 2), ("s2", 3), ("s1", 101)]


def test_events_arrive_in_order_with_counts() -> None:
    sink = RecordingSink()
    with pytest.warns(FailuresWarning):
        run(FailOn(ids=["s0"]), number_samples(4), backend="sequential", progress=sink)
    started, *finished, ended = sink.events
    assert started == RunStarted(total=4, stages=("FailOn",), backend="sequential", workers=1)
    assert all(isinstance(e, SampleFinished) for e in finished)
    assert len(finished) == 4
    assert finished[0].failure is not None
    assert finished[1].failure is None
    assert isinstance(ended, RunFinished)
    assert (ended.status, ended.done, ended.failed) == ("complete_with_failures", 3, 1)


def test_progress_modes_call_the_notebook_factory(monkeypatch: pytest.MonkeyPatch) -> None:
    from datamultiproc.notebook import _progress

    seen: list[tuple[str, threading.Event | None]] = []

    def factory(mode: str = "auto", *, stop: threading.Event | None = None) -> RecordingSink:
        seen.append((mode, stop))
        return RecordingSink()

    monkeypatch.setattr(_progress, "create_progress_sink", factory)
    modes: list[tuple[bool | Literal["auto", "widget", "text"], str]] = [
        (True, "auto"),
        ("auto", "auto"),
        ("widget", "widget"),
        ("text", "text"),
    ]
    for progress, mode in modes:
        run(AddStep(), number_samples(2), backend="sequential", progress=progress)
        assert seen[-1][0] == mode
        assert isinstance(seen[-1][1], threading.Event)
    run(AddStep(), number_samples(2), backend="sequential", progress=False)
    assert len(seen) == 4
    with pytest.raises(ValueError, match="progress must be"):
        run(AddStep(), number_samples(2), backend="sequential", progress="fancy")  # type: ignore[arg-type]


def test_stop_event_returns_what_finished_as_interrupted() -> None:
    sink = RecordingSink(stop_after=5)
    original = sink.handle

    def handle(event: Any) -> None:
        if isinstance(event, RunStarted):
            sink.stop = stop_holder[0]
        original(event)

    stop_holder: list[threading.Event] = []
    from datamultiproc.execution import _runner

    real = _runner._resolve_sink

    def resolve(progress: Any, stop: threading.Event) -> Any:
        stop_holder.append(stop)
        return real(progress, stop)

    sink.handle = handle  # type: ignore[method-assign]
    _runner._resolve_sink = resolve
    try:
        result = run(AddStep(), number_samples(100), backend="sequential", progress=sink)
    finally:
        _runner._resolve_sink = real
    assert result.status == "interrupted"
    assert len(result) == 5
    assert sink.events[-1].status == "interrupted"


@pytest.mark.parametrize("backend", BACKENDS)
def test_imap_is_lazy_and_ordered(backend: str) -> None:
    read: list[int] = []

    def samples() -> Iterator[NumberSample]:
        for sample in number_samples(5000):
            read.append(sample.data)
            yield sample

    stream = AddStep().imap(samples(), backend=backend, workers=2, progress=False)
    assert read == []  # nothing read before the first next()
    first = [next(stream) for _ in range(10)]
    assert [s.data for s in first] == list(range(1, 11))
    assert len(read) < 2500
    assert [s.data for s in stream] == list(range(11, 5001))


def test_imap_unordered_and_failures() -> None:
    with pytest.warns(FailuresWarning):
        out = list(
            imap(
                FailOn(ids=["s3"]),
                number_samples(10),
                ordered=False,
                backend="thread",
                progress=False,
            )
        )
    assert sorted(s.data for s in out) == [0, 1, 2, 4, 5, 6, 7, 8, 9]


def test_setup_runs_once_per_pipeline_in_process(tmp_path: Any) -> None:
    log = tmp_path / "setup.log"
    run(
        Compose(SetupLog(path=str(log)), AddStep()),
        number_samples(20),
        backend="sequential",
        progress=False,
    )
    assert len(log.read_text().split()) == 1


def test_executor_backend_accepts_a_thread_pool() -> None:
    with cf.ThreadPoolExecutor(2) as executor:
        result = run(AddStep(), number_samples(10), backend=executor, progress=False)
    assert result.backend == "executor"
    assert [s.data for s in result] == list(range(1, 11))


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"on_error": "ignore"}, ValueError, "on_error must be one of"),
        ({"workers": 0}, ValueError, "workers must be positive"),
        ({"workers": 1.5}, TypeError, "workers must be"),
        ({"chunksize": -1}, ValueError, "chunksize must be positive"),
        ({"timeout": 0}, ValueError, "timeout must be positive"),
        ({"timeout": 1.0, "backend": "sequential"}, ValueError, "timeout= needs backend='process'"),
        ({"backend": "gpu"}, ValueError, "backend must be"),
        ({"backend": "process", "start_method": "teleport"}, ValueError, "start_method must be"),
    ],
)
def test_bad_options_raise_clear_errors(options: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        run(AddStep(), number_samples(2), progress=False, **options)


def test_bad_pipeline_raises() -> None:
    with pytest.raises(TypeError, match="pipeline must be"):
        run(42, number_samples(2), backend="sequential", progress=False)  # type: ignore[arg-type]


def test_run_is_exported() -> None:
    assert datamultiproc.run is run


class CountingThreadPool(cf.ThreadPoolExecutor):
    """A thread pool that notes the size of every chunk submitted to it."""

    def __init__(self, workers: int) -> None:
        super().__init__(workers)
        self.chunks: list[int] = []

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
        # context.run(_run_local, pipeline, chunk, setup_error): the chunk is the list.
        self.chunks.append(len(next(a for a in args if isinstance(a, list))))
        return super().submit(fn, *args, **kwargs)


def test_executor_chunks_adapt_when_chunksize_is_none() -> None:
    with CountingThreadPool(2) as executor:
        result = run(AddStep(), number_samples(2000), backend=executor, progress=False)
    assert [s.data for s in result] == list(range(1, 2001))
    assert executor.chunks[0] == 1  # starts small, the cost of a sample unknown
    assert max(executor.chunks) >= 16  # then grows for quick samples
    assert sum(executor.chunks) == 2000


def test_executor_keeps_a_chosen_chunksize() -> None:
    with CountingThreadPool(2) as executor:
        run(AddStep(), number_samples(20), backend=executor, chunksize=3, progress=False)
    assert executor.chunks == [3] * 6 + [2]


def test_executor_workers_come_from_the_workers_option() -> None:
    with cf.ThreadPoolExecutor(3) as executor:
        assert run(AddStep(), number_samples(4), backend=executor, progress=False).workers == (
            usable_cores()
        )
        result = run(AddStep(), number_samples(4), backend=executor, workers=3, progress=False)
    assert result.workers == 3


class StopAfter:
    """A custom progress sink that stops the run through ``RunStarted.stop``."""

    def __init__(self, samples: int) -> None:
        self.samples, self.finished = samples, 0
        self.events: list[Any] = []

    def handle(self, event: Any) -> None:
        self.events.append(event)
        if isinstance(event, RunStarted):
            self.stop = event.stop
        elif isinstance(event, SampleFinished):
            self.finished += 1
            if self.finished == self.samples:
                self.stop()


@pytest.mark.parametrize("backend", ["sequential", "thread"])
def test_a_custom_sink_can_stop_the_run(backend: str) -> None:
    sink = StopAfter(5)
    result = run(
        AddStep(), number_samples(2000), backend=backend, workers=2, chunksize=1, progress=sink
    )
    assert result.status == "interrupted"
    assert 5 <= result.n_ok < 2000
    assert [s.data for s in result] == [int(s.id[1:]) + 1 for s in result]
    assert isinstance(sink.events[-1], RunFinished)
    assert sink.events[-1].status == "interrupted"


def test_a_custom_sink_can_stop_imap() -> None:
    sink = StopAfter(3)
    samples = list(imap(AddStep(), number_samples(100), backend="sequential", progress=sink))
    assert len(samples) == 3
    assert sink.events[-1].status == "interrupted"


def test_a_hand_made_run_started_has_a_harmless_stop() -> None:
    event = RunStarted(10, ("AddStep",), "sequential", 1)
    event.stop()  # nothing to stop
    assert event == RunStarted(10, ("AddStep",), "sequential", 1, stop=print)


def test_the_result_keeps_the_run_options() -> None:
    result = run(AddStep(), number_samples(3), backend="sequential", chunksize=2, progress=False)
    assert result.options is not None
    assert (result.options.backend, result.options.chunksize) == ("sequential", 2)
    assert result.options.changed() == {"backend": "sequential", "progress": False, "chunksize": 2}
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.options.workers = 3  # type: ignore[misc]


# -- the collector while results pile up ----------------------------------------------------


class _Node:
    """An object in a reference cycle (only the cyclic collector frees it)."""

    def __init__(self) -> None:
        self.me = self


def test_the_collector_is_paused_then_frees_a_runs_cyclic_garbage_later() -> None:
    with _gc_paused(True):
        assert not gc.isenabled()
        node = _Node()
        ref = weakref.ref(node)
        del node
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0  # nothing left frozen: the next collection sees it
    gc.collect()
    assert ref() is None


def test_objects_the_caller_froze_stay_frozen() -> None:
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        assert frozen > 0
        with _gc_paused(True):
            pass
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
