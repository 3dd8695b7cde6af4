"""The design document's hand-written Process + Queue example runs unchanged.

It needs the standard ``pickle`` to carry processors and samples to the workers.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from datamultiproc import BaseSample

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import sys, time
    from typing import Callable
    from datamultiproc import Compose, Save, ProcessingError
    from tests.helpers import AddStep as SomeProcessor, DoubleStep as AnotherProcessor
    from tests.helpers import number_samples

    from multiprocessing import Process, Queue

    # number of processor cores of your machine
    NUM_PROCESSES = 1

    # list of samples
    samples = number_samples(20)

    process = Compose([SomeProcessor(),
                       AnotherProcessor(),
                       Save(save_to_dir=sys.argv[1]),
                       ])

    # put the samples into a multiprocessing Queue
    samples_queue = Queue()
    for s in samples:
        samples_queue.put(s)
    time.sleep(0.5)  # the queue's feeder thread must flush before queue.empty() is meaningful


    def do_processing(process: Callable, queue: Queue):
        while not queue.empty():
            sample = queue.get()
            try:
                sample = process(sample)
            except ProcessingError:
                print(f"failed processing: {sample.id}")

    processes = []
    for _ in range(NUM_PROCESSES):
        p = Process(target=do_processing, args=(process, samples_queue))
        p.start()
        processes.append(p)

    for p in processes:
        p.join()
    """
)


@pytest.mark.slow
def test_seed_process_queue_example_runs(tmp_path: Path) -> None:
    save_dir = tmp_path / "save"
    completed = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(save_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    files = sorted((save_dir / "DoubleStep").rglob("*.pickle"))
    assert len(files) == 20
    loaded = {BaseSample.read_file(f).id: BaseSample.read_file(f) for f in files}
    assert loaded["s3"].data == (3 + 1) * 2  # type: ignore[attr-defined]
