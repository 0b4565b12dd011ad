"""``esc-pulumi --version``: the installed package's version, the one pyproject.toml declares."""
from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

import pytest

from esc_pulumi.cli import main

from .conftest import run_script

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_version_prints_the_installed_version(tmp_path: Path) -> None:
    r = run_script(["--version"], cwd=tmp_path)
    assert r.code == 0
    assert r.err == ""
    assert r.out == "esc-pulumi " + importlib.metadata.version("esc_pulumi") + "\n"


def test_version_is_the_one_pyproject_declares(tmp_path: Path) -> None:
    # The hand-written expectation: a stale install (metadata of an older version) fails here.
    declared = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["version"]
    assert run_script(["--version"], cwd=tmp_path).out == f"esc-pulumi {declared}\n"


def test_version_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out == "esc-pulumi " + importlib.metadata.version("esc_pulumi") + "\n"
