"""Make a Stop button work while the cell that runs the pipeline blocks the kernel.

A button click reaches the kernel as a ``comm_msg`` on the shell channel. While a
cell runs, the kernel's main thread is busy inside it, so the click would wait in
the queue until the run is over: too late to stop anything. ipykernel 7 reads the
shell channel in a thread of its own (the subshell design, JEP 91) and, for each
``comm_msg``, asks the target comm which subshell should handle it
(``Comm._reply_subshell_for``). That question is asked in the shell-channel thread
as soon as the message arrives, whatever the main thread is doing. We wrap it on
the Stop button's comm: when a click goes by, we set the ``threading.Event`` the
runner polls, and route the message as before. Only that one thread-safe call
happens off the main thread; widget updates stay on the main thread.

On kernels without that thread (ipykernel 6) or without that hook, the click is
handled by the ordinary ``on_click`` callback: at once whenever the main thread is
free (a frontend that sends comms over a subshell, an ``await``-ing cell), else only
after the run. :func:`watch_clicks` says which case applies, so the display can
tell the user to use the kernel's interrupt button instead.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

__all__ = ["watch_clicks"]


def watch_clicks(button: Any, stop: threading.Event) -> bool:
    """Set ``stop`` when ``button`` is clicked, even while the kernel's main thread is busy.

    Parameters
    ----------
    button
        An ``ipywidgets.Button``.
    stop
        The event to set.

    Returns
    -------
    bool
        ``True`` if a click is seen while a cell blocks the kernel; ``False`` if it is
        seen only when the main thread is free (no kernel, or an older ipykernel).
    """
    button.on_click(lambda _button: stop.set())
    comm = getattr(button, "comm", None)
    route = getattr(comm, "_reply_subshell_for", None)
    kernel = getattr(comm, "kernel", None)
    if route is None or getattr(kernel, "shell_channel_thread", None) is None:
        return False
    comm._reply_subshell_for = _routing_that_sees_clicks(route, stop)  # type: ignore[union-attr]
    return True


def _routing_that_sees_clicks(
    route: Callable[[Any, Any], Any], stop: threading.Event
) -> Callable[[Any, Any], Any]:
    def routed(data: Any, default: Any) -> Any:
        # Runs in ipykernel's shell-channel thread: only set the event, touch no widget.
        if is_click(data):
            stop.set()
        return route(data, default)

    return routed


def is_click(data: Any) -> bool:
    """Whether comm ``data`` is an ipywidgets button click.

    Examples
    --------
    >>> is_click({"method": "custom", "content": {"event": "click"}})
    True
    >>> is_click({"method": "update", "state": {"value": 1}})
    False
    """
    if not isinstance(data, dict) or data.get("method") != "custom":
        return False
    content = data.get("content")
    return isinstance(content, dict) and content.get("event") == "click"
