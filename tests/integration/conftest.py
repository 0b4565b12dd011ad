"""Shared fixtures: a clean Pulumi runtime per test, and throwaway Pulumi projects on disk."""
from __future__ import annotations

import asyncio
import os
import textwrap
from pathlib import Path
from typing import Any, Callable

import pytest

from tests.conftest import DEVELOPER_SETTINGS

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"



@pytest.fixture(autouse=True)
def clean_process(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Each test starts with a fresh Pulumi config dict/secret set, its own credentials folder,
    and gets os.environ, the cwd and the Pulumi settings restored afterwards."""
    from pulumi.runtime import config as rconfig, settings

    for name in DEVELOPER_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    creds = tmp_path_factory.mktemp("pulumi-home")
    monkeypatch.setenv("PULUMI_HOME", str(creds))
    monkeypatch.setenv("PULUMI_CREDENTIALS_PATH", str(creds))
    env = dict(os.environ)
    cwd = os.getcwd()
    saved = {k: getattr(settings.SETTINGS, k) for k in ("project", "stack", "organization", "root_directory", "monitor")}
    rconfig.set_all_config({}, [])
    # Outputs bind to the current event loop: give each test its own.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield
    asyncio.set_event_loop(None)
    loop.close()
    rconfig.set_all_config({}, [])
    for k, v in saved.items():
        setattr(settings.SETTINGS, k, v)
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


@pytest.fixture
def project(tmp_path: Path) -> Callable[..., Path]:
    """``project(stack_yaml, envs={"proj/env": yaml}, project_yaml=None)`` → the project folder.

    The project is named ``myproj``; definitions go under ``envs/`` (``file://envs``).
    """

    def make(stack: str | None = None, envs: dict[str, str] | None = None, project_yaml: str | None = None,
             stack_name: str = "dev") -> Path:
        root = tmp_path / "proj"
        write(root / "Pulumi.yaml", project_yaml or "name: myproj\nruntime: python\n")
        if stack is not None:
            write(root / f"Pulumi.{stack_name}.yaml", stack)
        for name, text in (envs or {}).items():
            proj, _, env = name.rpartition("/")
            write(root / "envs" / (proj or "default") / f"{env}.yaml", text)
        return root

    return make


def runtime_config() -> tuple[dict[str, Any], set[str]]:
    from pulumi.runtime import config as rconfig

    return rconfig.CONFIG.get(), rconfig._SECRET_KEYS.get()


def await_output(o: Any) -> tuple[Any, bool]:
    """(value, is_secret) of a pulumi Output, outside a Pulumi run."""

    async def get():
        return await o.future(), await o.is_secret()

    return asyncio.get_event_loop().run_until_complete(get())


class NullMocks:
    """Mocks that create nothing (for set_mocks in tests that only need the settings)."""

    def new_resource(self, args: Any) -> tuple[str, dict]:
        return f"{args.name}-id", args.inputs

    def call(self, args: Any) -> tuple[dict, None]:
        return {}, None
