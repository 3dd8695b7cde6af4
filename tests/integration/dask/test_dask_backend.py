"""The Dask backend on a real ``distributed.LocalCluster`` (two worker processes, loopback)."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from datamultiproc import (
    Cache,
    Compose,
    NotPicklableError,
    ProcessingError,
    WorkerLostError,
    run,
)
from datamultiproc.exceptions import FailuresWarning
from datamultiproc.execution import (
    DaskBackend,
    RunFinished,
    RunIterator,
    RunStarted,
    SampleFinished,
)
from datamultiproc.execution._runner import RemoteTraceback
from tests.helpers import (
    AddStep,
    AnySample,
    FailOn,
    Holder,
    KillOn,
    NumberSample,
    SetupLog,
    SlowStep,
    number_samples,
)
from tests.integration.dask.cells import notebook_script
from tests.integration.dask.conftest import wait_for_workers

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
ROOT = Path(__file__).resolve().parents[3]


class EventLog:
    """A progress sink that keeps every event."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def handle(self, event: Any) -> None:
        self.events.append(event)


def test_results_in_input_order_with_records_and_events(dask_client: Any) -> None:
    log = EventLog()
    pipeline = Compose(AddStep(), AddStep(step_size=2))
    result = pipeline.run(number_samples(300), backend=dask_client, progress=log)
    assert [s.data for s in result] == [i + 3 for i in range(300)]
    assert (result.status, result.backend, result.workers) == ("complete", "dask", 2)
    assert result.samples[7].processing_history == [
        ("AddStep", "step_size=1"),
        ("AddStep", "step_size=2"),
    ]
    workers = {record.worker for record in result.records}
    assert workers <= {f"dask-{address.split('://')[1]}" for address in dask_client.nthreads()}
    assert all(len(record.steps) == 2 for record in result.records)
    started, *samples, finished = log.events
    assert isinstance(started, RunStarted)
    assert started.backend == "dask"
    assert len(samples) == 300
    assert all(isinstance(event, SampleFinished) for event in samples)
    assert isinstance(finished, RunFinished)
    assert finished.status == "complete"


def test_backend_dask_uses_the_current_client_for_run_and_imap(dask_client: Any) -> None:
    from distributed import get_client

    assert get_client() is dask_client
    result = run(AddStep(), number_samples(20), backend="dask", progress=False)
    assert [s.data for s in result] == [i + 1 for i in range(20)]
    ordered = list(AddStep().imap(number_samples(50), backend="dask", progress=False))
    assert [s.id for s in ordered] == [f"s{i}" for i in range(50)]
    unordered = AddStep().imap(number_samples(50), backend="dask", progress=False, ordered=False)
    assert sorted(s.data for s in unordered) == [i + 1 for i in range(50)]


def test_imap_reads_a_long_generator_lazily(dask_client: Any) -> None:
    read = itertools.count()

    def endless() -> Iterator[NumberSample]:
        for index in read:
            yield NumberSample(id=f"g{index}", data=index)

    stream = AddStep().imap(endless(), backend=dask_client, progress=False, chunksize=4)
    assert isinstance(stream, RunIterator)
    first = [next(stream).data for _ in range(20)]
    stream.close()  # cancels the chunks in flight
    assert first == list(range(1, 21))
    # In flight: two chunks per worker, and the runner's input check reads ahead a batch.
    assert next(read) < 2_000


def test_on_error_collect_skip_and_raise(dask_client: Any) -> None:
    pipeline = Compose(AddStep(), FailOn(ids=["s3", "s17"]))
    with pytest.warns(FailuresWarning, match="2 of 40"):
        collected = pipeline.run(number_samples(40), backend=dask_client, progress=False)
    assert collected.status == "complete_with_failures"
    assert [f.sample_id for f in collected.failures] == ["s3", "s17"]
    failure = collected.failures[0]
    assert (failure.stage, failure.error_type, failure.message) == (
        "FailOn",
        "ValueError",
        "bad sample s3",
    )
    assert "Traceback" in failure.traceback
    assert "in process" in failure.traceback  # the worker's frames
    assert failure.worker.startswith("dask-")
    assert len(collected.samples) == 38

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        skipped = pipeline.run(
            number_samples(40), backend=dask_client, progress=False, on_error="skip"
        )
    assert len(skipped.failures) == 2

    with pytest.raises(ProcessingError, match="bad sample s3") as caught:
        pipeline.run(
            number_samples(40), backend=dask_client, progress=False, on_error="raise", chunksize=1
        )
    assert caught.value.sample_id in {"s3", "s17"}
    assert isinstance(caught.value.__cause__, RemoteTraceback)
    assert "ValueError" in str(caught.value.__cause__)


@pytest.mark.parametrize("chunksize", [8, None])
def test_a_sample_that_kills_every_worker_ends_as_a_failure(
    dask_client: Any, chunksize: int | None
) -> None:
    pipeline = Compose(AddStep(), KillOn(ids=["s13"]))
    with pytest.warns(FailuresWarning, match="1 of 60"):
        result = pipeline.run(
            number_samples(60), backend=dask_client, progress=False, chunksize=chunksize
        )
    assert [s.id for s in result] == [f"s{i}" for i in range(60) if i != 13]  # chunk-mates rerun
    (failure,) = result.failures
    assert (failure.sample_id, failure.error_type) == ("s13", "WorkerLostError")
    assert failure.message.startswith("worker died")
    assert "KilledWorker" in failure.message
    if chunksize is None:
        with pytest.raises(WorkerLostError, match="worker died"):
            pipeline.run(number_samples(20), backend=dask_client, progress=False, on_error="raise")
    wait_for_workers(dask_client, 2)  # the nannies restart killed workers


def test_many_chunks_give_the_same_samples_records_and_failures(dask_client: Any) -> None:
    # Enough tiny samples for chunks of every size: the first ones, full ones, the tail.
    pipeline = Compose(AddStep(), FailOn(ids=["s77", "s4321"]), AddStep(step_size=3))
    with pytest.warns(FailuresWarning, match="2 of 9000"):
        on_dask = pipeline.run(number_samples(9000), backend=dask_client, progress=False)
    with pytest.warns(FailuresWarning, match="2 of 9000"):  # no process pool beside the cluster
        in_order = pipeline.run(number_samples(9000), backend="sequential", progress=False)

    def steps(result: Any) -> list[Any]:
        return [
            (
                r.index,
                r.sample_id,
                r.status,
                [(s.step, s.stage, s.params, s.status) for s in r.steps],
            )
            for r in result.records
        ]

    assert [s.model_dump() for s in on_dask] == [s.model_dump() for s in in_order]
    assert steps(on_dask) == steps(in_order)
    assert [(f.sample_id, f.stage, f.message) for f in on_dask.failures] == [
        (f.sample_id, f.stage, f.message) for f in in_order.failures
    ]


def test_a_run_leaves_no_pipeline_plugin_behind(dask_client: Any) -> None:
    def pipeline_plugins(dask_scheduler: Any) -> list[str]:
        names = list(dask_scheduler.worker_plugins)
        return [n for n in names if n.startswith("datamultiproc-") and "classes" not in n]

    assert AddStep().run(number_samples(30), backend=dask_client, progress=False).n_ok == 30
    deadline = time.monotonic() + 30  # unregistered in the background once the run is over
    while dask_client.run_on_scheduler(pipeline_plugins):
        assert time.monotonic() < deadline, dask_client.run_on_scheduler(pipeline_plugins)
        time.sleep(0.05)


def test_workers_keep_their_long_lived_objects_out_of_collections(dask_client: Any) -> None:
    import gc

    # As in the process backend's workers: a full collection of a Dask worker's heap
    # costs tens of milliseconds, and chunks of tiny samples would set one off often.
    result = AddStep().run(number_samples(30), backend=dask_client, progress=False)
    ran = {record.worker.removeprefix("dask-") for record in result.records}
    frozen = dask_client.run(gc.get_freeze_count)
    assert ran
    assert all(frozen[f"tcp://{address}"] > 0 for address in ran), frozen


def test_setup_runs_once_per_worker_process(dask_client: Any, tmp_path: Path) -> None:
    log = tmp_path / "setup.log"
    pipeline = Compose(SetupLog(path=str(log)), AddStep())
    # Every sample on the cluster: the client would set its own copy up (see test_dask_inline).
    backend = DaskBackend(dask_client, inline=False)
    result = pipeline.run(number_samples(200), backend=backend, chunksize=3, progress=False)
    assert result.n_ok == 200
    pids = [int(pid) for pid in log.read_text().split()]
    assert len(pids) == len(set(pids))  # once per process
    wait_for_workers(dask_client, 2)
    assert set(pids) <= set(dask_client.run(os.getpid).values())  # in the Dask workers
    assert cast(Any, pipeline.steps[0])._pid is None  # private state stays in the workers

    again = pipeline.run(number_samples(50), backend=backend, chunksize=3, progress=False)
    assert again.n_ok == 50
    assert sorted(map(int, log.read_text().split())) == sorted(pids)  # warm: no second setup


def test_cache_entries_written_by_workers_are_hits_on_rerun(
    dask_client: Any, cache_dir: Path
) -> None:
    pipeline = Compose(Cache(processor=AddStep(step_size=5), cache_dir=cache_dir), AddStep())
    first = pipeline.run(number_samples(120), backend=dask_client, chunksize=4, progress=False)
    assert [s.data for s in first] == [i + 6 for i in range(120)]
    assert all(record.steps[0].cache_hit is False for record in first.records)

    second = pipeline.run(number_samples(120), backend=dask_client, chunksize=4, progress=False)
    assert [s.data for s in second] == [i + 6 for i in range(120)]
    assert all(record.steps[0].cache_hit is True for record in second.records)
    cache = pipeline.steps[0]
    assert isinstance(cache, Cache)
    assert cache.stats.hits == 120  # counted in the workers, merged here


def test_a_cache_directory_a_worker_cannot_write_fails_plainly(
    dask_client: Any, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the cache's parent folder should be")
    cache_dir = blocker / "cache"
    pipeline = Cache(processor=AddStep(), cache_dir=cache_dir)
    with pytest.warns(FailuresWarning, match="10 of 10"):
        result = pipeline.run(number_samples(10), backend=dask_client, progress=False)
    failure = result.failures[0]
    assert failure.error_type == "StorageError"
    assert f"cannot write to {str(cache_dir)!r}" in failure.message
    assert "Dask worker" in failure.message
    assert "every worker" in failure.message


def test_ctrl_c_cancels_the_queued_chunks(dask_client: Any) -> None:
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    started = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        SlowStep(seconds=0.3).run(number_samples(40), backend=dask_client, progress=False)
    assert time.perf_counter() - started < 5  # 40 samples take 6 s on two workers
    time.sleep(0.6)  # the chunks that were running finish on their workers
    assert not any(dask_client.processing().values())
    assert AddStep().run(number_samples(5), backend=dask_client, progress=False).n_ok == 5


def test_unpicklable_samples_and_processors_are_named(dask_client: Any) -> None:
    samples = [AnySample(id="ok1"), AnySample(id="locked", payload=threading.Lock())]
    with pytest.warns(FailuresWarning, match="1 of 2"):
        result = Holder().run(samples, backend=dask_client, progress=False)
    assert [s.id for s in result] == ["ok1"]
    (failure,) = result.failures
    assert failure.error_type == "NotPicklableError"
    assert "'locked'" in failure.message
    assert "'payload'" in failure.message
    with pytest.raises(NotPicklableError, match="'thing'"):
        Holder(thing=threading.Lock()).run(samples[:1], backend=dask_client, progress=False)


def test_timeout_is_refused(dask_client: Any) -> None:
    with pytest.raises(ValueError, match="timeout= needs backend='process'; backend 'dask'"):
        AddStep().run(number_samples(3), backend=dask_client, progress=False, timeout=5)


# Classes defined in __main__ with no file behind it, as in a notebook cell.
NOTEBOOK_SCRIPT = notebook_script(
    40,
    """{
        "status": result.status,
        "data": [s.data for s in result],
        "same_class": all(type(s) is CellSample for s in result),
        "workers": len({r.worker for r in result.records}),
    }""",
)


def _run_script(script: str) -> dict[str, Any]:
    """Run ``script`` in a fresh interpreter (its ``__main__`` is a notebook's); return its JSON."""
    import json

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    completed = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=150,
        env=env,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    out: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return out


def test_notebook_defined_classes_run_on_the_workers() -> None:
    out = _run_script(NOTEBOOK_SCRIPT)
    assert out["status"] == "complete"
    assert out["data"] == [(i * 2 + 10) * 3 + 10 for i in range(40)]
    assert out["same_class"] is True


CLASS_TABLE_SCRIPT = textwrap.dedent(
    """
    import json
    from distributed import Client, LocalCluster
    from datamultiproc import BaseSample, Processor
    from datamultiproc.execution import _codec, _dask, _dask_feeder

    class CellSample(BaseSample):
        data: int

    class CellStep(Processor):
        def process(self, sample):
            sample.data = sample.data + 1
            return sample

    sizes = []
    encode = _dask_feeder.encode_samples

    def recording_encode(items, known=None):
        payload = encode(items, known)
        sizes.append(len(payload) / len(items))
        return payload

    _dask_feeder.encode_samples = recording_encode
    options = dict(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    with LocalCluster(host="127.0.0.1", **options) as cluster, Client(cluster) as client:
        first = CellStep().run([CellSample(id=f"a{i}", data=i) for i in range(300)], backend=client, progress=False)
        first_sizes, sizes[:] = list(sizes), []
        cluster.scale(3)
        client.wait_for_workers(3)
        second = CellStep().run([CellSample(id=f"b{i}", data=i) for i in range(300)], backend=client, progress=False)
        tokens = client.run(lambda: sorted(_codec._classes_by_token))
        print(json.dumps({
            "data": [s.data for s in first] + [s.data for s in second],
            "same_class": all(type(s) is CellSample for s in [*first, *second]),
            "first_chunk": first_sizes[0],
            "later_chunks": max(first_sizes[1:] + sizes),
            "tokens": sorted(map(tuple, tokens.values())),
            "parent_tokens": sorted(_dask._known_classes(client)),
        }))
    """
)


def test_notebook_classes_travel_once_per_cluster() -> None:
    out = _run_script(CLASS_TABLE_SCRIPT)
    assert out["data"] == [i + 1 for i in range(300)] * 2
    assert out["same_class"] is True
    # The first chunk carries the class by value; every later one only its token.
    assert out["first_chunk"] > 1000
    assert out["later_chunks"] < 500
    # Every worker, including the one that joined after the first run, has the class.
    assert len(out["tokens"]) == 3
    assert all(set(out["parent_tokens"]) <= set(tokens) for tokens in out["tokens"])
