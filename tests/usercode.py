"""A user module written to a temporary folder, as ``utils.py`` beside a notebook would be.

Tests import it, run its processor in worker processes, edit the file (and reload it)
and run again, to check that warm workers never run the old code.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

SOURCE = """
from datamultiproc import Processor

FACTOR = {factor}


def scale(value):
    return value * FACTOR


class Scale(Processor):
    def process(self, sample):
        sample.data = scale(sample.data){extra}
        return sample
"""


# A module whose code reads data globals (a dict, a number, an array) and a lock.
DATA_SOURCE = """
import threading
from typing import ClassVar

import numpy as np

from datamultiproc import Processor

TABLE = {"add": 1}
THRESHOLD = 0.5
ARRAY = np.array([1.0, 2.0])
LOCK = threading.Lock()  # read too, but cannot travel: each worker keeps its own


def lookup(value):
    with LOCK:
        return value * 1000 + TABLE["add"] * 100 + int(THRESHOLD * 10) + int(ARRAY.sum())


class Look(Processor):
    LIMIT: ClassVar[int] = 1  # a class attribute the code reads

    def process(self, sample):
        sample.data = lookup(sample.data) + 10_000_000 * self.LIMIT
        return sample
"""


@contextmanager
def user_module(folder: Path, source: str = "") -> Iterator[tuple[ModuleType, Path]]:
    """Write ``SOURCE`` (or ``source``) as a uniquely named module in ``folder``; import it."""
    name = f"user_utils_{uuid.uuid4().hex[:8]}"
    path = folder / f"{name}.py"
    path.write_text(source or SOURCE.format(factor=2, extra=""))
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module(name), path
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop(name, None)


def write(path: Path, text: str) -> None:
    """Write ``text`` to ``path``; its modification time moves a second on (coarse clocks).

    Never earlier than now, as a real edit: a file time in the past would look written
    before processes forked since.
    """
    before = path.stat().st_mtime_ns
    path.write_text(text)
    stamp = max(before + 1_000_000_000, time.time_ns())
    os.utime(path, ns=(stamp, stamp))


def edit(path: Path, module: ModuleType, **source: object) -> ModuleType:
    """Rewrite the module's file from ``SOURCE`` with ``source`` filled in, and reload it."""
    write(path, SOURCE.format(**source))
    return importlib.reload(module)
