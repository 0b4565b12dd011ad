"""The examples, run the way `pulumi up` runs a program: the language host's arguments and
PULUMI_CONFIG, the real SDK in its own process, talking gRPC to esc_pulumi.testing's fake engine."""
from __future__ import annotations

import subprocess
import sys

import pytest

from esc_pulumi.backends.cloud import CloudBackend
from esc_pulumi.testing import cli_config, run_program
from esc_pulumi.workspace.plan import make_plan

from .conftest import EXAMPLES, ROOT

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture(scope="module")
def local_run():
    config, secret_keys = cli_config(EXAMPLES / "local", "dev")
    return run_program(EXAMPLES / "local", "dev", config=config, secret_keys=secret_keys).check()


def test_the_cli_passes_the_stack_file_and_the_project_defaults():
    config, secret_keys = cli_config(EXAMPLES / "local", "dev")
    assert config == {
        "esc:backend": "file://envs",
        "esc:environments": '["webapp/dev","dev-overrides"]',
        "webapp:logLevel": "debug",
        "webapp:maintenanceWindow": "sun:02:00-sun:03:00",
        "webapp:replicas": "1",
        "webapp:tags": '{"team":"web"}',
    }
    assert secret_keys == []


def test_local_example_config(local_run):
    outputs = local_run.outputs
    assert outputs["appName"] == "webapp"
    assert outputs["port"] == 8080 and outputs["debug"] is False and outputs["replicas"] == 2
    assert outputs["logLevel"] == "debug"  # the stack file wins over ESC and the project default
    assert outputs["maintenanceWindow"] == "sun:02:00-sun:03:00"  # project default
    assert outputs["region"] == "eu-west-1"  # namespaced aws:region, from an imported environment
    assert outputs["database"] == {"host": "dev-db.internal", "name": "webapp", "port": 5432}
    assert outputs["tags"] == {"costCenter": "4711", "org": "acme", "team": "web"}  # deep merge
    assert outputs["allowedCidrs"] == ["10.0.0.0/16", "10.1.0.0/16"]
    db = local_run.resource("db", "webapp:index:Database")
    assert db.inputs == {
        "host": "dev-db.internal", "port": 5432, "password": PASSWORD, "region": "eu-west-1",
        "tags": {"costCenter": "4711", "org": "acme", "team": "web"},
    }


def test_local_example_secrets_stay_secret(local_run):
    outputs = local_run.outputs
    assert outputs["dbPassword"] == PASSWORD and "dbPassword" in outputs.secret
    assert PASSWORD in outputs["dbUrl"] and "dbUrl" in outputs.secret
    assert "appName" not in outputs.secret
    # On the wire, exactly as the engine gets it: wrapped in the secret signature.
    assert outputs.wire["dbPassword"] == {
        "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "value": PASSWORD,
    }
    loaded = outputs["escLoad"]
    secret_config = {p.split('"')[1] for p in outputs.secret_paths if p.startswith("escLoad.config[")}
    assert {"webapp:dbPassword", "webapp:dbUrl"} <= secret_config
    assert loaded["config"]["webapp:dbPassword"]["value"] == PASSWORD
    (db,) = local_run.resources
    assert db.secret_paths == ("password",)
    assert PASSWORD not in repr(local_run)


def test_local_example_environment_and_files(local_run):
    outputs = local_run.outputs
    assert outputs["appStage"] == "dev" and "appStage" not in outputs.secret
    assert outputs["settingsFile"] == "[database]\nhost = dev-db.internal\nport = 5432\n"
    loaded = outputs["escLoad"]
    assert loaded["files"]["APP_SETTINGS_FILE"]["mode"] == "0o600"  # as the program saw it
    assert loaded["environmentVariables"]["PGPASSWORD"] == PASSWORD
    assert 'escLoad.environmentVariables.PGPASSWORD' in outputs.secret_paths
    assert loaded["environmentVariables"]["APP_PORT"] == "8080"


def test_local_example_loads_once(local_run):
    loaded = local_run.outputs["escLoad"]
    assert loaded["secondLoadSame"] is True
    assert loaded["requests"] == 0
    assert loaded["environments"] == ["webapp/dev", "dev-overrides"]


def test_local_example_under_mocks():
    # The mocks-based unit test example stays a working, supported mode.
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLES / "test_local_under_mocks.py")],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "3 passed" in out.stdout


def test_demo_output_masks_secrets():
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / "run_program.py"), str(EXAMPLES / "local")],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    assert PASSWORD not in out.stdout and "[secret]" in out.stdout
    assert "webapp:dbPassword" in out.stdout and "environment webapp/dev" in out.stdout
    assert "secret inputs on the wire: password" in out.stdout
    assert "* webapp:dbPassword" in out.stdout and "PGPASSWORD=[secret]" in out.stdout
    assert "a second load() returned the same result, opening nothing" in out.stdout
    shown = subprocess.run(
        [sys.executable, str(EXAMPLES / "run_program.py"), str(EXAMPLES / "local"), "--show-secrets"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert shown.returncode == 0, shown.stderr
    assert PASSWORD in shown.stdout


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
