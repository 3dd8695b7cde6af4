"""Which edits make ``joblib.Memory`` recompute: the joblib column of the README's rerun table.

Run from the repository root (needs ``pip install joblib``; not a project dependency)::

    python benchmarks/measure_joblib_reruns.py

For each edit, a fresh folder gets ``work.py`` (a cached function using a base class,
a helper in the same module, a helper in ``utils.py`` and a global dict) and
``utils.py``; the function is called in a fresh interpreter twice (computes, then
loads), the file is edited, and a third fresh interpreter shows whether the body ran.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

FILES = {
    "utils.py": """
        def helper2(x):
            return x + 1
    """,
    "work.py": """
        import joblib
        from utils import helper2
        mem = joblib.Memory("cachedir", verbose=0)
        CONFIG = {"k": 2}

        def helper(x):
            return x * 2

        class Base:
            def scale(self, x):
                return x

        @mem.cache
        def f(x, h=0.4):
            print("COMPUTED")
            return Base().scale(helper(helper2(x))) * CONFIG["k"] + h
    """,
}
BODY = 'return Base().scale(helper(helper2(x))) * CONFIG["k"] + h'
EDITS = {
    "processor code": ("work.py", BODY, BODY + " + 0"),
    "base class": ("work.py", "        return x\n", "        return x + 0\n"),
    "helper in the same module": ("work.py", "return x * 2", "return x * 3"),
    "helper in utils.py": ("utils.py", "return x + 1", "return x + 2"),
    "global dict value": ("work.py", '{"k": 2}', '{"k": 3}'),
    "comment only": ("work.py", 'print("COMPUTED")', 'print("COMPUTED")  # a comment'),
    "unrelated variable": ("work.py", 'CONFIG = {"k": 2}', 'CONFIG = {"k": 2}\nunrelated = 5'),
}


def _fresh(root: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    for name, text in FILES.items():
        (root / name).write_text(textwrap.dedent(text))


def _computes(root: Path, args: str = "1") -> bool:
    code = f"import work; work.f({args})"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    return "COMPUTED" in done.stdout


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="joblib-reruns-")) / "work"
    rows = []
    try:
        for edit, (name, old, new) in EDITS.items():
            _fresh(root)
            if not _computes(root) or _computes(root):
                msg = "joblib did not compute, then load, the unedited function"
                raise RuntimeError(msg)
            path = root / name
            path.write_text(path.read_text().replace(old, new))
            rows.append((edit, _computes(root)))
        _fresh(root)
        _computes(root)
        rows.append(("parameter h 0.4 -> 0.5", _computes(root, "1, h=0.5")))
    finally:
        shutil.rmtree(root.parent, ignore_errors=True)
    print("| edit | joblib.Memory |")
    print("|---|---|")
    for edit, reran in rows:
        print(f"| {edit} | {'reruns' if reran else 'old result'} |")


if __name__ == "__main__":
    main()
