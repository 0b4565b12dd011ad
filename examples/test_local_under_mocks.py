"""Unit tests of the examples/local program under ``pulumi.runtime.set_mocks`` — the other mode
esc_pulumi supports: in-process and fast, no engine. The Pulumi CLI gives such tests no config
at all; the program's own ``esc_pulumi.load()`` gives them the config a real run gets.

(To see what the engine would receive, wire form and all, run the program through
``esc_pulumi.testing.run_program`` instead: ``examples/run_program.py``.)

Run: ``python -m pytest examples/test_local_under_mocks.py``
"""
from __future__ import annotations

import os
import runpy
from pathlib import Path
from typing import Any

import pulumi
import pytest

PROJECT = Path(__file__).resolve().parent / "local"


class Mocks(pulumi.runtime.Mocks):
    """Resources get an ID and their inputs back; every registration is kept."""

    def __init__(self) -> None:
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.resources.append(args)
        return f"{args.name}-id", args.inputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list | None]:
        return {}, None


@pytest.fixture(scope="module")
def program() -> tuple[dict[str, Any], Mocks]:
    """The program's globals after it ran under mocks (stack dev), and the mocks."""
    mocks = Mocks()
    pulumi.runtime.set_mocks(mocks, project="webapp", stack="dev", preview=False)
    # `pulumi up` runs the program in its project folder: load() finds Pulumi.yaml from there.
    cwd = os.getcwd()
    os.chdir(PROJECT)
    try:
        return runpy.run_path(str(PROJECT / "__main__.py")), mocks
    finally:
        os.chdir(cwd)


@pulumi.runtime.test
def test_the_database_gets_its_config_from_esc(program):
    globals_, _ = program

    def check(args: list[Any]) -> None:
        host, port, region, tags = args
        assert (host, port, region) == ("dev-db.internal", 5432, "eu-west-1")
        assert tags == {"costCenter": "4711", "org": "acme", "team": "web"}  # the stack's team wins

    db = globals_["db"]
    return pulumi.Output.all(db.host, db.port, db.region, db.tags).apply(check)


@pulumi.runtime.test
def test_the_password_is_a_secret(program):
    globals_, _ = program

    async def check() -> None:
        assert await globals_["password"].is_secret()
        assert await globals_["password"].future() == "correct-horse-battery-staple"

    return pulumi.Output.from_input(check())


def test_load_applied_config_once(program):
    globals_, mocks = program
    loaded = globals_["loaded"]
    assert loaded.environments == ("webapp/dev", "dev-overrides")
    assert {"webapp:dbPassword", "webapp:dbUrl"} <= loaded.secret_keys
    assert loaded.config["webapp:replicas"] == "2"  # dev-overrides wins over the project default
    assert [r.name for r in mocks.resources] == ["db"]
