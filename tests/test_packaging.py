"""The project metadata agrees with itself: pyproject, environment.yml and the package."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

import datamultiproc

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent


def _split(requirement: str) -> tuple[str, str]:
    match = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", requirement)
    assert match, requirement
    return match.group(1).lower().replace("_", "-"), match.group(2).replace(" ", "")


def test_environment_yml_matches_pyproject_dependencies() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = dict(_split(dep) for dep in environment["dependencies"] if isinstance(dep, str))
    assert "conda-forge" in environment["channels"]
    assert conda.pop("python") == project["requires-python"]
    assert conda.pop("pip") == ""
    assert conda == dict(_split(dep) for dep in project["dependencies"])
    assert {"pip": ["-e ."]} in environment["dependencies"]


def test_design_dependencies_are_declared() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {_split(dep)[0] for dep in project["dependencies"]}
    assert {"pydantic", "numpy", "pandas", "tqdm", "ipywidgets", "multiprocess"} <= names


def test_version_is_exposed_and_typed() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", datamultiproc.__version__)
    assert (Path(datamultiproc.__file__).parent / "py.typed").is_file()


def test_readme_quick_start_has_the_two_commands_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    ci_script = (ROOT / ".ci" / "run").read_text()
    demo_command = "pip install -e . && python -m datamultiproc.demo"
    test_command = 'pip install -e ".[test]" && python -m pytest'
    assert demo_command in readme
    assert test_command in readme
    assert test_command in ci_script
