"""The REF commands against an ESC service: ``esc-pulumi serve`` on 127.0.0.1, reached through
the cloud backend (pulumi-esc-sdk), selected by ESC_PULUMI_BACKEND outside any project."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Iterator

import pytest

from tests.server.conftest import ORG, Env, start_env

from .conftest import run_script

BASE = """\
values:
  region: us-west-2
  password:
    fn::secret: cloud-s3cret
"""

APP = """\
imports:
  - myproj/base
values:
  greeting: hello ${region}
  environmentVariables:
    AWS_REGION: ${region}
    DB_PASSWORD: ${password}
"""

@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    e = start_env(tmp_path_factory.mktemp("esc-cli-server"))
    try:
        client = e.client("admin")
        for name, text in (("base", BASE), ("app", APP)):
            client.create_environment(ORG, "myproj", name)
            client.update_environment_yaml(ORG, "myproj", name, text)
        yield e
    finally:
        e.server.stop()


def cloud_env(service: Env) -> dict[str, str]:
    return {
        "ESC_PULUMI_BACKEND": service.server.url,
        "ESC_PULUMI_ORGANIZATION": ORG,
        "PULUMI_ACCESS_TOKEN": service.tokens["opener"],
    }


def test_open_formats(service, tmp_path):
    env = cloud_env(service)
    r = run_script(["open", "myproj/app", "--format", "dotenv"], cwd=tmp_path, env=env)
    assert (r.code, r.out) == (0, 'AWS_REGION="us-west-2"\nDB_PASSWORD="[secret]"\n'), r.err
    r = run_script(["open", "myproj/app", "greeting"], cwd=tmp_path, env=env)
    assert (r.code, r.out) == (0, '"hello us-west-2"\n'), r.err
    r = run_script(["open", "myproj/app", "--format", "shell", "--show-secrets"], cwd=tmp_path, env=env)
    assert r.out == 'export AWS_REGION="us-west-2"\nexport DB_PASSWORD="cloud-s3cret"\n'


def test_open_detailed(service, tmp_path):
    env = cloud_env(service)
    r = run_script(["open", "myproj/app", "--format", "detailed"], cwd=tmp_path, env=env)
    assert r.code == 0, r.err
    model = json.loads(r.out)
    # The environment's own model, opened by name as esc env open does; secrets redacted.
    assert list(model) == ["exprs", "properties", "schema", "executionContext"]
    assert sorted(model["exprs"]) == ["environmentVariables", "greeting"]
    assert model["properties"]["password"]["value"] == "[secret]"
    assert "cloud-s3cret" not in r.out
    assert model["executionContext"]["properties"]["currentEnvironment"]["value"]["name"]["value"] == "myproj/app"
    r = run_script(["open", "myproj/app", "--format", "detailed", "--show-secrets"], cwd=tmp_path, env=env)
    assert r.code == 0 and json.loads(r.out)["properties"]["password"]["value"] == "cloud-s3cret"


def test_run_masks_secrets(service, tmp_path):
    child = "import os; print(os.environ['AWS_REGION'], os.environ['DB_PASSWORD'])"
    r = run_script(["run", "myproj/app", "--", sys.executable, "-c", child], cwd=tmp_path, env=cloud_env(service))
    assert (r.code, r.out) == (0, "us-west-2 [secret]\n"), r.err


def test_check(service, tmp_path):
    r = run_script(["check", "myproj/app"], cwd=tmp_path, env=cloud_env(service))
    assert (r.code, r.out) == (0, ""), r.err


def test_errors_are_one_line(service, tmp_path):
    env = {**cloud_env(service), "PULUMI_ACCESS_TOKEN": "not-a-token"}
    r = run_script(["open", "myproj/app"], cwd=tmp_path, env=env)
    assert r.code != 0 and r.out == "" and r.err.count("\n") == 1 and "Traceback" not in r.err
    r = run_script(["open", "myproj/nosuch"], cwd=tmp_path, env=cloud_env(service))
    assert r.code != 0 and r.out == "" and "Traceback" not in r.err
    assert "nosuch" in r.err

