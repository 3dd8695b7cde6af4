from __future__ import annotations

import sys
from pathlib import Path

import pytest

# tests.helpers must be importable by spawned workers and subprocesses too.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def save_dir(tmp_path: Path) -> Path:
    return tmp_path / "save"
