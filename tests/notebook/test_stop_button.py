"""The panel's Stop button, clicked while a cell blocks a real kernel.

A click arrives as a ``comm_msg`` on the shell channel, which the busy main thread
cannot read; these tests send exactly that message from a client, the way JupyterLab
does, while the cell runs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300), pytest.mark.usefixtures("jupyter_path")]

CLICK = {"method": "custom", "content": {"event": "click"}}
STOP_CLASS = "datamultiproc-progress-stop"


@pytest.fixture
def kernel() -> Iterator[Any]:
    from jupyter_client.manager import start_new_kernel

    manager, client = start_new_kernel(kernel_name="python3", startup_timeout=120)
    try:
        yield client
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def execute(client: Any, code: str, *, click: bool = False) -> str:
    """Run ``code``; with ``click``, press the panel's Stop button once its bar has moved.

    Returns the cell's printed output. Fails on an error or after 120 s.
    """
    msg_id = client.execute(code)
    stop_comm, clicked, printed = None, False, []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        msg = client.get_iopub_msg(timeout=deadline - time.monotonic())
        kind, content = msg["msg_type"], msg["content"]
        if kind == "comm_open" and STOP_CLASS in content["data"]["state"].get("_dom_classes", []):
            stop_comm = content["comm_id"]
        elif kind == "comm_msg" and click and stop_comm and not clicked:
            value = content["data"].get("state", {}).get("value")
            if isinstance(value, int) and value > 0:  # the bar moved: some samples are done
                clicked = True
                client.session.send(
                    client.shell_channel.socket,
                    "comm_msg",
                    {"comm_id": stop_comm, "data": CLICK},
                )
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if kind == "stream":
            printed.append(content["text"])
        elif kind == "error":
            pytest.fail("\n".join(content["traceback"]))
        elif kind == "status" and content["execution_state"] == "idle":
            return "".join(printed)
    pytest.fail(f"cell still running after 120 s; output so far: {''.join(printed)!r}")


def test_stop_is_seen_while_the_cell_blocks_the_kernel(kernel: Any) -> None:
    out = execute(
        kernel,
        """
import threading, time
from datamultiproc.core import SampleRecord
from datamultiproc.execution import RunFinished, RunStarted, SampleFinished
from datamultiproc.notebook import WidgetProgress

stop = threading.Event()
panel = WidgetProgress(stop=stop, min_interval=0.05)
print("seen while busy:", panel.stop_while_busy)
panel.handle(RunStarted(total=100_000, stages=(), backend="test", workers=1))
done = 0
while not stop.is_set() and done < 100_000:
    time.sleep(0.01)  # a blocking run, as the runner's loop is
    panel.handle(SampleFinished(SampleRecord(done, str(done), "main", "ok", ())))
    done += 1
panel.handle(RunFinished("interrupted" if stop.is_set() else "complete", done, 0, 1.0))
print("stopped:", stop.is_set(), "after", done, panel.bar.bar_style or "-", panel.bar.style.bar_color)
""",
        click=True,
    )
    assert "seen while busy: True" in out
    stopped = out.split("stopped: ")[1].split()
    assert stopped[0] == "True"
    assert int(stopped[2]) < 100_000
    assert stopped[3:5] == ["-", "#78909c"]  # no bar style, a grey bar: stopped


def test_stop_ends_a_real_run_with_the_results_so_far(kernel: Any) -> None:
    out = execute(
        kernel,
        """
from tests.helpers import SlowStep, number_samples
result = SlowStep(seconds=0.05).run(number_samples(2000), workers=2, backend="process", progress="widget")
print("status:", result.status, "ok:", result.n_ok, "of", 2000)
""",
        click=True,
    )
    status = out.split("status: ")[1].split()
    assert status[0] == "interrupted"
    assert 0 < int(status[2]) < 2000
