"""RunOptions: the checked options of one run, a frozen value built once by run() and imap()."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from datamultiproc.execution._events import ProgressSink

__all__ = ["OnError", "ProgressOption", "RunOptions"]

OnError = Literal["collect", "skip", "raise"]
ProgressOption = bool | Literal["auto", "widget", "text"] | ProgressSink


@dataclass(frozen=True)
class RunOptions:
    """The options of :func:`~datamultiproc.run` and :func:`~datamultiproc.execution.imap`.

    Built once per run from the keyword arguments and checked on creation; the runner
    passes it down and :attr:`RunResult.options` keeps it. See :func:`~datamultiproc.run`
    for what each option means.

    Raises
    ------
    ValueError, TypeError
        For a bad value, naming the option.

    Examples
    --------
    >>> RunOptions(workers=2, on_error="skip").workers
    2
    >>> RunOptions(workers=0)
    Traceback (most recent call last):
    ...
    ValueError: workers must be positive, not 0
    """

    workers: int | None = None
    backend: Any = "process"
    start_method: str | None = None
    progress: ProgressOption = True
    on_error: OnError = "collect"
    chunksize: int | None = None
    timeout: float | None = None
    ordered: bool = True
    total: int | None = None

    def __post_init__(self) -> None:
        _check_choice("on_error", self.on_error, ("collect", "skip", "raise"))
        _check_positive("workers", self.workers, int)
        _check_positive("chunksize", self.chunksize, int)
        _check_positive("timeout", self.timeout, (int, float))
        _check_total(self.total)
        if not _is_progress(self.progress):
            msg = (
                "progress must be True, False, 'auto', 'widget', 'text' or a ProgressSink, "
                f"not {self.progress!r}"
            )
            raise ValueError(msg)

    def changed(self) -> dict[str, Any]:
        """Return the options that differ from their defaults.

        Examples
        --------
        >>> RunOptions(workers=2, progress=False).changed()
        {'workers': 2, 'progress': False}
        """
        default = RunOptions()
        return {
            name: value
            for name, value in vars(self).items()
            if not _same(value, getattr(default, name))
        }


def _same(value: Any, default: Any) -> bool:
    return type(value) is type(default) and value == default


def _is_progress(progress: Any) -> bool:
    if progress is None or isinstance(progress, bool) or hasattr(progress, "handle"):
        return True
    return isinstance(progress, str) and progress in ("auto", "widget", "text")


def _check_total(total: Any) -> None:
    if total is None:
        return
    msg = f"total must be a number of samples (an int >= 0) or None, not {total!r}"
    if isinstance(total, bool) or not isinstance(total, int):
        raise TypeError(msg)
    if total < 0:
        raise ValueError(msg)


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        msg = f"{name} must be one of {', '.join(map(repr, choices))}, not {value!r}"
        raise ValueError(msg)


def _check_positive(name: str, value: Any, kind: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, kind):
        msg = f"{name} must be a positive number or None, not {value!r}"
        raise TypeError(msg)
    if value <= 0:
        msg = f"{name} must be positive, not {value!r}"
        raise ValueError(msg)
