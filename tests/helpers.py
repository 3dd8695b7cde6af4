"""Sample and processor types shared by tests; importable, so spawn workers find them."""

from __future__ import annotations

import contextlib
import decimal
import os
import time
from typing import Any

import numpy as np
from pydantic import BaseModel, PrivateAttr

from datamultiproc import BaseSample, Processor


class NumberSample(BaseSample):
    data: int
    optional_data: str | None = None


class ArraySample(BaseSample):
    data: int = 0
    array: np.ndarray


class AddStep(Processor):
    step_size: int = 1

    def process(self, sample: NumberSample) -> NumberSample:
        sample.data = sample.data + self.step_size
        return sample


class DoubleStep(Processor):
    def process(self, sample: NumberSample) -> NumberSample:
        sample.data = sample.data * 2
        return sample


class SlowStep(Processor):
    seconds: float = 0.2

    def process(self, sample: NumberSample) -> NumberSample:
        time.sleep(self.seconds)
        sample.data = sample.data + 1
        return sample


class FailOn(Processor):
    """Raises ValueError for the listed ids."""

    ids: list[str]

    def process(self, sample: NumberSample) -> NumberSample:
        if sample.id in self.ids:
            msg = f"bad sample {sample.id}"
            raise ValueError(msg)
        return sample


class ReturnsNone(Processor):
    def process(self, sample: NumberSample) -> None:
        sample.data = 0


def number_samples(count: int, *, prefix: str = "s") -> list[NumberSample]:
    return [NumberSample(id=f"{prefix}{index}", data=index) for index in range(count)]


# --- runner (issue 4): processors that misbehave inside worker processes -----------------


class KillOn(Processor):
    """Kills its own worker process (SIGKILL, os._exit or a segfault) on the listed ids."""

    ids: list[str]
    how: str = "sigkill"

    def process(self, sample: NumberSample) -> NumberSample:
        if sample.id in self.ids:
            import os
            import signal

            if self.how == "sigkill":
                os.kill(os.getpid(), signal.SIGKILL)
            elif self.how == "exit":
                os._exit(3)
            else:
                import ctypes
                import faulthandler

                faulthandler.disable()  # pytest's handler would print every thread's stack
                ctypes.string_at(0)
        return sample


class SleepOn(Processor):
    """Sleeps ``seconds`` on the listed ids."""

    ids: list[str]
    seconds: float = 5.0

    def process(self, sample: NumberSample) -> NumberSample:
        if sample.id in self.ids:
            time.sleep(self.seconds)
        return sample


class SetupLog(Processor):
    """Appends "<pid>\\n" to ``path`` in setup(); records the pid in a private attribute."""

    path: str
    _pid: int | None = None

    def setup(self) -> None:
        import os

        self._pid = os.getpid()
        with open(self.path, "a") as handle:
            handle.write(f"{self._pid}\n")

    def process(self, sample: NumberSample) -> NumberSample:
        if self._pid is None:
            msg = "setup() did not run"
            raise RuntimeError(msg)
        return sample


class AnySample(BaseSample):
    """A sample whose payload may be anything, e.g. a lock that cannot be pickled."""

    payload: object = None


class Holder(Processor):
    """Holds anything as configuration, e.g. a lock that cannot be pickled."""

    thing: object = None

    def process(self, sample: NumberSample) -> NumberSample:
        return sample


class MarkAndWait(Processor):
    """Note each sample's start in ``directory`` (file ``<id>.<pid>`` holding the time),
    then sleep, or spin in a numpy loop when ``busy``, for ``seconds``."""

    directory: str
    seconds: float = 60.0
    busy: bool = False

    def process(self, sample: NumberSample) -> NumberSample:
        import os
        from pathlib import Path

        marker = Path(self.directory) / f"{sample.id}.{os.getpid()}"
        marker.write_text(repr(time.time()))
        end = time.monotonic() + self.seconds
        if not self.busy:
            time.sleep(self.seconds)
        values = np.ones(1000)
        while self.busy and time.monotonic() < end:
            values = np.sqrt(values * values)
        return sample


# --- process backend at the limits (issue 13) ---------------------------------------------


def _arrays(value: object) -> list[np.ndarray]:
    if isinstance(value, np.ndarray):
        return [value]
    if isinstance(value, dict):
        return [array for item in value.values() for array in _arrays(item)]
    if isinstance(value, (list, tuple)):
        return [array for item in value for array in _arrays(item)]
    return []


class TouchArrays(Processor):
    """Writes every numeric array of ``payload`` in place (fails if one is read-only)."""

    def process(self, sample: AnySample) -> AnySample:
        for array in _arrays(sample.payload):
            if array.dtype != object and array.size:
                array[...] = array  # raises ValueError on a read-only array
        return sample


class MakeArray(Processor):
    """Puts a new float64 array of ``size`` elements, ``data + k``, in ``payload``."""

    size: int = 1 << 17

    def process(self, sample: AnySample) -> AnySample:
        base = float(sample.id.lstrip("m") or 0)
        sample.payload = {"made": np.arange(self.size, dtype=np.float64) + base}
        return sample


class Burn(Processor):
    """Spends ``seconds`` of CPU time per sample."""

    seconds: float = 0.002

    def process(self, sample: NumberSample) -> NumberSample:
        end = time.thread_time() + self.seconds
        while time.thread_time() < end:
            pass
        sample.data = sample.data + 1
        return sample


class InterruptOn(Processor):
    """Sends its own process SIGINT (Ctrl-C) on the listed ids; workers ignore it."""

    ids: list[str]

    def process(self, sample: NumberSample) -> NumberSample:
        if sample.id in self.ids:
            import signal

            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # handled here, in the middle of the sample
        return sample


class BurnFrom(Processor):
    """Spends ``seconds`` of CPU time on samples whose ``data`` is ``start`` or more."""

    start: int
    seconds: float = 0.002

    def process(self, sample: NumberSample) -> NumberSample:
        if sample.data >= self.start:
            end = time.thread_time() + self.seconds
            while time.thread_time() < end:
                pass
        sample.data = sample.data + 1
        return sample


class AppendTo(Processor):
    """Appends ``value`` to the sample's ``values`` list in place (a mutating step)."""

    value: int = 1

    def process(self, sample: ListSample) -> ListSample:
        sample.values.append(self.value)
        return sample


class ListSample(BaseSample):
    values: list[int]


# --- data in and out (issue 11) ----------------------------------------------------------


class TileSample(BaseSample):
    """The sample class of the datamultiproc 0.1.3 files in tests/data/v0_1_3."""

    size: int
    label: str | None = None
    pixels: np.ndarray
    features: dict[str, float] = {}  # noqa: RUF012 (a pydantic field)


class Measure(Processor):
    """Fills ``features`` from ``pixels``; changes the array in place when ``scribble``."""

    scale: float = 1.0
    scribble: bool = False

    def process(self, sample: TileSample) -> TileSample:
        if self.scribble:
            sample.pixels += 1  # in place: the caller's array, unless the runner copied it
        mean = float(sample.pixels.mean()) * self.scale
        sample.features = {"mean": mean, "max": float(sample.pixels.max())}
        return sample


def tile_samples(count: int) -> list[TileSample]:
    return [
        TileSample(id=f"tile-{i}", size=i + 1, pixels=np.arange(4, dtype=np.uint8) + i)
        for i in range(count)
    ]


def append_save_records(stage_dir: str, configuration: str, worker: int, count: int) -> None:
    """Append ``count`` records at once from one process (a concurrent-writer test)."""
    from pathlib import Path

    from datamultiproc.storage._save_records import append_record

    for index in range(count):
        sample_id = f"w{worker}-{index}" + "x" * (index % 50)
        append_record(Path(stage_dir), configuration, f"w{worker}-{index}.pickle", sample_id)


# Input arrays a ReuseInput step kept, with a copy of what they held, per worker process.
_KEPT_INPUTS: list[tuple[np.ndarray, np.ndarray]] = []


class ReuseInput(Processor):
    """Doubles ``sample.array`` in one of the ways a processor may hold on to its input.

    ``how``: ``"new"`` a new array; ``"same"`` the input array itself, doubled in place;
    ``"view"`` a view of the input (doubled in place, first element dropped); ``"keep"``
    a new array, the input kept in a module list (and a view of it with ``"keep_view"``).
    Kept inputs are checked on every later sample in the same process: one that changed
    raises. ``data`` gets the inodes of the memory files this process holds open.
    """

    how: str = "new"

    def process(self, sample: ArraySample) -> ArraySample:
        import os

        for kept, copy in _KEPT_INPUTS:
            if not np.array_equal(kept, copy):
                msg = "an input array kept by a processor changed under it"
                raise RuntimeError(msg)
        array = sample.array
        if self.how == "same":
            array *= 2
        elif self.how == "view":
            array *= 2
            sample.array = array[1:]
        else:
            sample.array = array * 2
            if self.how == "keep":
                _KEPT_INPUTS.append((array, array.copy()))
            elif self.how == "keep_view":
                _KEPT_INPUTS.append((array[5:], array[5:].copy()))
        del array
        inodes = []
        for name in os.listdir("/proc/self/fd"):
            try:
                if os.readlink(f"/proc/self/fd/{name}").startswith("/memfd:datamultiproc"):
                    inodes.append(os.fstat(int(name)).st_ino)
            except OSError:
                continue
        sample.data = inodes[0] if len(inodes) == 1 else -len(inodes)
        return sample


class Churn(Processor):
    """Allocates ``mib`` MiB in 4 MiB arrays at once, then frees them."""

    mib: int = 96

    def process(self, sample: NumberSample) -> NumberSample:
        arrays = [np.ones(1 << 19) for _ in range(self.mib // 4)]
        sample.data = int(sum(float(a[0]) for a in arrays))
        return sample


def memfds(pid: int | str = "self") -> int:
    """Descriptors and maps of datamultiproc's memory files held by process ``pid``."""
    count = 0
    with os.scandir(f"/proc/{pid}/fd") as entries:
        for entry in entries:
            with contextlib.suppress(OSError):
                count += os.readlink(entry.path).startswith("/memfd:datamultiproc")
    with open(f"/proc/{pid}/maps") as maps:
        count += sum("memfd:datamultiproc" in line for line in maps)
    return count


# --- samples that share objects (each must still own its own copy in a worker) -----------


class Part(BaseModel):
    """A nested model a sample holds (``object`` fields keep the instance given)."""

    items: list[int] = []


class SharingSample(BaseSample):
    """Parts a caller may hand several samples at once: pydantic keeps them as given."""

    image: Any = None
    tags: Any = None
    meta: Any = None
    nested: Any = None
    seen: float = 0.0


def sharing_samples(count: int, *, shape: tuple[int, ...] = (64,)) -> list[SharingSample]:
    """``count`` samples built around one array, one list, one dict and one nested model."""
    image = np.ones(shape)
    tags = ["raw"]
    meta = {"source": "camera"}
    nested = Part(items=[0])
    return [
        SharingSample(id=f"v{i}", image=image, tags=tags, meta=meta, nested=nested)
        for i in range(count)
    ]


class ChangeInPlace(Processor):
    """Changes every part of its sample in place, then notes what it sees."""

    def process(self, sample: SharingSample) -> SharingSample:
        sample.image *= 2
        sample.tags.append("seen")
        sample.meta["count"] = sample.meta.get("count", 0) + 1
        sample.nested.items.append(1)
        sample.seen = (
            float(sample.image.sum())
            + 1000 * len(sample.tags)
            + 10_000 * sample.meta["count"]
            + 100_000 * len(sample.nested.items)
        )
        return sample


class AddFromFile(Processor):
    """Adds the number its ``setup()`` reads from ``path`` (as a model or a table is loaded).

    Each ``setup()`` appends its pid to ``log``; with ``append_to`` set, ``process()``
    appends to that file (a pipeline writing a file its setup read).
    """

    path: str
    log: str = ""
    append_to: str = ""
    _add: int = PrivateAttr(default=0)

    def setup(self) -> None:
        with open(self.path) as source:
            self._add = int(source.read().split()[0])
        if self.log:
            with open(self.log, "a") as log:
                log.write(f"{os.getpid()}\n")

    def process(self, sample: NumberSample) -> NumberSample:
        if self.append_to:
            with open(self.append_to, "a") as written:
                written.write(" x")
        sample.data = sample.data + self._add
        return sample


class AddFromEnvironment(Processor):
    """Adds ``$<variable>`` (0 when unset) in ``process()`` and ``$<variable>_SETUP`` as set up."""

    variable: str
    _at_setup: int = PrivateAttr(default=0)

    def setup(self) -> None:
        self._at_setup = int(os.environ.get(f"{self.variable}_SETUP", "0"))

    def process(self, sample: NumberSample) -> NumberSample:
        sample.data = sample.data + int(os.environ.get(self.variable, "0")) + self._at_setup
        return sample


class DrawRandom(Processor):
    """Sets ``data`` to a draw from numpy's global generator (as an augmentation would)."""

    def process(self, sample: NumberSample) -> NumberSample:
        sample.data = int(np.random.randint(0, 2**62))
        return sample


class AddFromRelativeFile(Processor):
    """Adds the number in the file at ``path`` (relative to the working directory), read in process()."""

    path: str

    def process(self, sample: NumberSample) -> NumberSample:
        with open(self.path) as source:
            sample.data = sample.data + int(source.read())
        return sample


class Calculate(Processor):
    """Sets ``data`` to the digits of 1/7 as a Decimal; divides a float by zero if ``divide``."""

    divide: bool = False

    def process(self, sample: NumberSample) -> NumberSample:
        sample.data = len(str(decimal.Decimal(1) / decimal.Decimal(7)))
        if self.divide:
            sample.data += int(np.float64(1.0) / np.float64(0.0) > 0)
        return sample
