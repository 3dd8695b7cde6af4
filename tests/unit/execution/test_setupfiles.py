"""Which files a watched setup() read, and which writes a worker makes count as its own."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from datamultiproc.execution._setupfiles import watched_setup


def test_files_read_are_watched_files_written_or_imported_are_not(tmp_path: Path) -> None:
    import numpy as np

    table, written, array = tmp_path / "table.csv", tmp_path / "out.txt", tmp_path / "a.npy"
    table.write_text("1,2")
    np.save(array, np.arange(3))

    def setup() -> None:
        table.read_text()
        np.load(array)
        written.write_text("log")  # opened for writing only
        import json  # noqa: F401 (an import opens no data file worth watching)

    _, stamps = watched_setup(setup)
    assert sorted(path for path, _, _ in stamps) == sorted([str(table), str(array)])
    assert not stamps.changed()
    written.write_text("more")  # not watched
    assert not stamps.changed()
    array.unlink()  # a file gone counts as changed
    assert stamps.changed()


def test_a_worker_notes_only_its_writes_to_watched_files(tmp_path: Path) -> None:
    # In a fresh interpreter: note_own_writes() turns the whole process into a worker.
    script = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        from datamultiproc.execution import _setupfiles
        folder = Path({str(tmp_path)!r})
        table = folder / "table.txt"
        table.write_text("1")
        _setupfiles.note_own_writes()
        _, stamps = _setupfiles.watched_setup(table.read_text)
        for number in range(2000):  # a Save-like pipeline writing many files
            (folder / f"out{{number}}.tmp").write_text("x")
            os.replace(folder / f"out{{number}}.tmp", folder / f"out{{number}}.pkl")
        assert _setupfiles._own_writes[0] == set(), len(_setupfiles._own_writes[0])
        with open(table, "a") as own:  # the worker appends to the file its setup read
            own.write("2")
        assert not stamps.changed()  # its own write: no new setup
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == "ok", done.stderr
