"""Fixtures for esc_pulumi.testing: throwaway Pulumi projects, and a process environment that
does not leak a developer's setup into the programs the harness starts (they inherit it)."""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Callable

import pytest

from tests.conftest import DEVELOPER_SETTINGS



@pytest.fixture(autouse=True)
def clean_environment(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in DEVELOPER_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path_factory.mktemp("pulumi-home")
    monkeypatch.setenv("PULUMI_HOME", str(home))
    monkeypatch.setenv("PULUMI_CREDENTIALS_PATH", str(home))


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


@pytest.fixture
def project(tmp_path: Path) -> Callable[..., Path]:
    """``project(program, stack=None, envs={"proj/env": yaml}, project_yaml=None)`` → the folder
    of a project named ``myproj`` whose ``__main__.py`` is ``program``; ESC definitions go
    under ``envs/`` (``file://envs``)."""

    def make(
        program: str,
        stack: str | None = None,
        envs: dict[str, str] | None = None,
        project_yaml: str | None = None,
        stack_name: str = "dev",
    ) -> Path:
        root = tmp_path / "proj"
        write(root / "Pulumi.yaml", project_yaml or "name: myproj\nruntime: python\n")
        write(root / "__main__.py", program)
        if stack is not None:
            write(root / f"Pulumi.{stack_name}.yaml", stack)
        for name, text in (envs or {}).items():
            proj, _, env = name.rpartition("/")
            write(root / "envs" / (proj or "default") / f"{env}.yaml", text)
        return root

    return make
