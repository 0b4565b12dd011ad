"""The examples, run the way `pulumi up` runs a program (PULUMI_CONFIG, run_in_stack, mocks)."""
from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from esc_pulumi.backends.cloud import CloudBackend
from esc_pulumi.workspace.plan import make_plan

from .conftest import EXAMPLES, ROOT, load_example_runner

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture(scope="module")
def local_run():
    return load_example_runner().run_program(EXAMPLES / "local", "dev")


def test_local_example_config(local_run):
    outputs = {k: v for k, (v, _) in local_run.outputs.items()}
    assert outputs["appName"] == "webapp"
    assert outputs["port"] == 8080 and outputs["debug"] is False and outputs["replicas"] == 2
    assert outputs["logLevel"] == "debug"  # the stack file wins over ESC and the project default
    assert outputs["maintenanceWindow"] == "sun:02:00-sun:03:00"  # project default
    assert outputs["region"] == "eu-west-1"  # namespaced aws:region, from an imported environment
    assert outputs["database"] == {"host": "dev-db.internal", "name": "webapp", "port": 5432}
    assert outputs["tags"] == {"costCenter": "4711", "org": "acme", "team": "web"}  # deep merge
    assert outputs["allowedCidrs"] == ["10.0.0.0/16", "10.1.0.0/16"]


def test_local_example_secrets_stay_secret(local_run):
    assert local_run.outputs["dbPassword"] == (PASSWORD, True)
    value, secret = local_run.outputs["dbUrl"]
    assert secret and PASSWORD in value
    assert {"webapp:dbPassword", "webapp:dbUrl"} <= local_run.secret_keys
    (db,) = local_run.resources
    assert db["secret_inputs"] == ["password"]
    assert local_run.outputs["appName"][1] is False


def test_local_example_environment_and_files(local_run):
    assert local_run.outputs["appStage"] == ("dev", False)
    assert local_run.outputs["settingsFile"][0] == "[database]\nhost = dev-db.internal\nport = 5432\n"
    path = local_run.load_result.files["APP_SETTINGS_FILE"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert local_run.environ["PGPASSWORD"] == PASSWORD


def test_local_example_loads_once(local_run):
    assert local_run.second_load_same
    assert local_run.load_result.requests == 0


def test_demo_output_masks_secrets():
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / "run_program.py"), str(EXAMPLES / "local")],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    assert PASSWORD not in out.stdout and "[secret]" in out.stdout
    assert "webapp:dbPassword" in out.stdout and "environment webapp/dev" in out.stdout
    assert "secret inputs on the wire: password" in out.stdout


def test_cloud_example_stack_file_parses(monkeypatch):
    monkeypatch.setenv("PULUMI_ACCESS_TOKEN", "pul-test")
    plan = make_plan("prod", EXAMPLES / "cloud")
    assert plan.project == "payments" and plan.list_source == "environment"
    assert plan.environments == ("aws-prod", "payments/prod@stable")
    assert plan.composition == {"imports": ["aws-prod", "payments/prod@stable"]}
    assert plan.organization == "acme"
    assert isinstance(plan.backend, CloudBackend) and plan.backend.url == "https://api.pulumi.com"
    assert plan.project_defaults == {"payments:replicas": 2}
    assert not plan.applied_by_cli
