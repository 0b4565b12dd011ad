"""esc_pulumi.load() inside a program run the way `pulumi up` runs it, with the config the CLI
would pass (cli_config): file:// definitions in the project, secrets on the wire, variables,
files, the stack's precedence — and the CLI's own `environment:` handling."""
from __future__ import annotations

import pytest

from esc_pulumi.errors import ConfigurationError
from esc_pulumi.testing import cli_config, run_program
from esc_pulumi.testing._wire import SECRET_SIG, SIG_KEY

SECRET = "hunter2-very-secret"

BASE = """
values:
  region: eu-west-1
  pulumiConfig:
    aws:region: ${region}
    name: base
    replicas: 1
"""
DEV = f"""
imports:
  - base
values:
  password:
    fn::secret: {SECRET}
  pulumiConfig:
    name: dev
    dbPassword: ${{password}}
    replicas: 3
  environmentVariables:
    STAGE: dev
    DB_PASSWORD: ${{password}}
  files:
    SETTINGS_FILE: "host = db\\n"
"""

PROGRAM = """
import os
import stat

import pulumi
import esc_pulumi

result = esc_pulumi.load()
cfg = esc_pulumi.Config()


class Db(pulumi.CustomResource):
    def __init__(self, name, props):
        super().__init__("myproj:index:Db", name, props)


Db("db", {"password": cfg.require("dbPassword"), "name": cfg.require("name")})
pulumi.export("name", cfg.require("name"))
pulumi.export("replicas", cfg.require_int("replicas"))
pulumi.export("region", pulumi.Config("aws").require("region"))
pulumi.export("owner", cfg.get("owner"))
pulumi.export("stage", os.environ["STAGE"])
pulumi.export("dbPasswordVar", pulumi.Output.secret(os.environ["DB_PASSWORD"]))
with open(os.environ["SETTINGS_FILE"]) as f:
    pulumi.export("settings", f.read())
pulumi.export("settingsMode", oct(stat.S_IMODE(os.stat(os.environ["SETTINGS_FILE"]).st_mode)))
pulumi.export("environments", list(result.environments))
pulumi.export("appliedByCli", result.applied_by_cli)
pulumi.export("secondLoadSame", esc_pulumi.load() is result)
pulumi.log.info(f"loaded {len(result.config)} keys")
"""

STACK = """
config:
  esc:backend: file://envs
  esc:environments: [base, dev]
  myproj:owner: me
  myproj:replicas: 5
"""


def wrapped(value):
    return {SIG_KEY: SECRET_SIG, "value": value}


@pytest.fixture
def app(project):
    return project(PROGRAM, STACK, {"base": BASE, "dev": DEV})


def test_load_inside_a_harness_run(app):
    config, secret_keys = cli_config(app, "dev")
    assert config == {
        "esc:backend": "file://envs",
        "esc:environments": '["base","dev"]',
        "myproj:owner": "me",
        "myproj:replicas": "5",
    }
    assert secret_keys == []
    run = run_program(app, "dev", config=config, secret_keys=secret_keys).check()
    out = run.outputs
    assert out["name"] == "dev"  # the later environment wins
    assert out["replicas"] == 5  # the stack file wins over ESC
    assert out["region"] == "eu-west-1" and out["owner"] == "me"
    assert out["environments"] == ["base", "dev"]
    assert out["appliedByCli"] is False and out["secondLoadSame"] is True
    # The ESC secret went to the engine as a secret, in the resource and as an output.
    assert run.resource("db").inputs_wire == {"password": wrapped(SECRET), "name": "dev"}
    assert run.resource("db").secret_paths == ("password",)
    assert out.wire["dbPasswordVar"] == wrapped(SECRET)
    assert out["stage"] == "dev"
    assert out["settings"] == "host = db\n" and out["settingsMode"] == "0o600"
    assert run.messages() == ["loaded 7 keys"]
    assert SECRET not in run.stdout + run.stderr and SECRET not in repr(run)


def test_load_failure_fails_the_program(project):
    root = project(PROGRAM, STACK, {"base": BASE})  # dev is missing
    config, secret_keys = cli_config(root, "dev")
    run = run_program(root, "dev", config=config, secret_keys=secret_keys)
    assert run.exit_code != 0
    assert "dev" in run.stderr and "EnvironmentNotFound" in run.stderr


ENV_STACK = """
environment:
  - base
  - dev
config:
  esc:backend: file://envs
  myproj:owner: me
"""


def test_a_diy_backend_refuses_environment(project):
    root = project(PROGRAM, ENV_STACK, {"base": BASE, "dev": DEV})
    with pytest.raises(ConfigurationError, match=r"^backend \S+ does not support environments; Pulumi ESC "
                       r"environments require the Pulumi Cloud backend$"):
        cli_config(root, "dev")


def test_on_pulumi_cloud_the_cli_applies_environment_itself(project):
    # cloud=True: the CLI opens `environment:` (here from the file:// definitions) and passes the
    # merged config; inside the run, load() sees that the CLI applied it and opens nothing.
    root = project(PROGRAM, ENV_STACK, {"base": BASE, "dev": DEV})
    config, secret_keys = cli_config(root, "dev", cloud=True)
    assert config["myproj:name"] == "dev" and config["myproj:dbPassword"] == SECRET
    assert config["myproj:owner"] == "me" and config["aws:region"] == "eu-west-1"
    assert secret_keys == ["myproj:dbPassword"]
    # Variables and files are the CLI's business too (it sets them in its own process).
    env = {"STAGE": "dev", "DB_PASSWORD": SECRET, "SETTINGS_FILE": str(root / "settings.txt")}
    (root / "settings.txt").write_text("host = db\n")
    run = run_program(root, "dev", config=config, secret_keys=secret_keys, env=env).check()
    assert run.outputs["appliedByCli"] is True
    assert run.outputs["name"] == "dev" and run.outputs["replicas"] == 3
    assert run.resource("db").secret_paths == ("password",)


def test_cli_config_reads_the_environment_it_is_given(project):
    root = project(PROGRAM, "config:\n  myproj:owner: me\n", {"base": BASE})
    config, _ = cli_config(root, "dev", environ={"ESC_PULUMI_BACKEND": "file://envs"})
    assert config == {"myproj:owner": "me"}  # no environments listed: nothing else to pass
