"""``esc-pulumi check`` and ``esc-pulumi config`` on a stack check its config as ``pulumi up``
will: the environments' ``pulumiConfig`` keys, the project's typed declarations (the CLI's
messages), and, on a DIY state backend, the declared keys only ESC supplies."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from esc_pulumi.cli.main import main

from .conftest import run_script, write

PROJECT = """
name: myproj
runtime: python
config:
  replicas:
    type: integer
  tags:
    type: array
    items:
      type: string
  dbPassword:
    type: string
    secret: true
  region:
    type: string
    default: us-east-1
"""


@pytest.fixture
def typed_project(tmp_path: Path) -> Path:
    """``myproj`` with typed declarations, definitions in ``envs/`` (``esc:backend``), and
    stacks: ``good`` (everything from ESC, secrets secret), ``bad`` (wrong types, a plain
    secret, a missing key), ``bare`` (no environments at all)."""
    envs = tmp_path / "envs"
    write(
        envs / "myproj" / "good.yaml",
        """
        values:
          pulumiConfig:
            replicas: 3
            tags: [web, blue]
            dbPassword:
              fn::secret: s3cr3t-pw
        """,
    )
    write(
        envs / "myproj" / "bad.yaml",
        """
        values:
          pulumiConfig:
            tags: [web, 2]
            dbPassword: plain-pw
        """,
    )
    write(envs / "myproj" / "dup.yaml", "values:\n  pulumiConfig:\n    a: 1\n    myproj:a: 2\n")
    write(envs / "myproj" / "odd.yaml", "values:\n  pulumiConfig:\n    ':k': 1\n")
    write(envs / "myproj" / "scalar.yaml", "values:\n  pulumiConfig: 42\n")
    proj = tmp_path / "proj"
    write(proj / "Pulumi.yaml", PROJECT)
    for stack, envname, extra in (
        ("good", "good", ""),
        ("bad", "bad", "  myproj:replicas: 3.0\n"),
        ("dup", "dup", ""),
        ("odd", "odd", ""),
        ("scalar", "scalar", ""),
    ):
        write(
            proj / f"Pulumi.{stack}.yaml",
            f"config:\n  esc:backend: file://../envs\n  esc:environments: [myproj/{envname}]\n{extra}",
        )
    write(proj / "Pulumi.bare.yaml", "config:\n  myproj:replicas: 2\n")
    return proj


CLOUD = {"PULUMI_BACKEND_URL": "https://api.pulumi.com"}


def test_a_good_stack_on_pulumi_cloud_checks_clean(typed_project):
    r = run_script(["check", "--stack", "good"], cwd=typed_project, env=CLOUD)
    assert (r.code, r.out, r.err) == (0, "", "")


def test_wrong_types_plain_secrets_and_missing_values_in_the_clis_words(typed_project):
    r = run_script(["check", "--stack", "bad"], cwd=typed_project, env=CLOUD)
    assert r.code == 1, r.err
    assert r.out.splitlines() == [
        "../envs/myproj/bad.yaml:4:17: error: Stack 'bad' with configuration key 'dbPassword' must be "
        "encrypted as it's secret (make it a secret in the environment: fn::secret)",
        "Pulumi.bad.yaml: error: Stack 'bad' with configuration key 'replicas' must be of type 'integer'",
        "../envs/myproj/bad.yaml:3:11: error: Stack 'bad' with configuration key 'tags' must be of type "
        "'array<string>'",
    ]
    assert "plain-pw" not in r.out + r.err


def test_missing_values_name_the_stack_file(typed_project):
    r = run_script(["check", "--stack", "bare"], cwd=typed_project, env=CLOUD)
    assert r.code == 1
    assert r.err == "stack bare lists no environments: checking its config only\n"
    assert r.out == (
        "Pulumi.bare.yaml: error: Stack 'bare' is missing configuration values 'dbPassword' and 'tags' "
        "(set them in the stack file or in an environment's pulumiConfig, or give their declarations defaults)\n"
    )


def test_skip_config_validation(typed_project):
    r = run_script(["check", "--stack", "bad", "--skip-config-validation"], cwd=typed_project, env=CLOUD)
    assert (r.code, r.out) == (0, ""), r.out
    r = run_script(["check", "-s", "bare", "--skip-config-validation"], cwd=typed_project, env=CLOUD)
    assert (r.code, r.out, r.err) == (0, "", "stack bare lists no environments: nothing to check\n")


def test_pulumi_config_key_problems_name_the_environment(typed_project):
    r = run_script(["check", "--stack", "dup"], cwd=typed_project, env=CLOUD)
    assert r.code == 1
    assert r.out == (
        "environment myproj/dup: error: pulumiConfig keys 'a' and 'myproj:a' both mean config key "
        "'myproj:a': keep one of them\n"
    )
    r = run_script(["check", "--stack", "scalar"], cwd=typed_project, env=CLOUD)
    assert r.code == 1
    assert r.out == "environment myproj/scalar: error: pulumiConfig must be an object of config keys\n"
    # Key problems are checked with --skip-config-validation too: they are not the typed config.
    r = run_script(["check", "--stack", "dup", "--skip-config-validation"], cwd=typed_project, env=CLOUD)
    assert r.code == 1 and "both mean config key" in r.out


def test_odd_key_forms_are_warnings(typed_project):
    # No typed check may fail here: give the declared keys defaults.
    write(typed_project / "Pulumi.yaml", "name: myproj\nruntime: python\n")
    r = run_script(["check", "--stack", "odd"], cwd=typed_project, env=CLOUD)
    assert r.code == 0, r.out
    assert r.out == (
        "environment myproj/odd: warning: pulumiConfig key ':k' has an empty namespace (config key ':k'); "
        "the Pulumi CLI accepts it, but it is probably a mistake\n"
    )


DIY_WARNING = (
    "Pulumi.yaml: warning: only ESC supplies 'dbPassword', 'replicas', and 'tags' (declared in Pulumi.yaml "
    "without a default), but on {where} `pulumi up` validates the config before the program runs, on the "
    "stack file alone, so it stops with: Stack 'good' is missing configuration values 'dbPassword', "
    "'replicas', and 'tags'. Fix: give the declarations a `default:` (the ESC value still wins when the "
    "program calls esc_pulumi.load()), remove them from Pulumi.yaml, or run `esc-pulumi run -- pulumi up`, "
    "which writes the ESC values into the config file the CLI validates\n"
)


def test_diy_backend_warns_about_keys_only_esc_supplies(typed_project):
    r = run_script(["check", "--stack", "good"], cwd=typed_project, env={"PULUMI_BACKEND_URL": "s3://state"})
    assert (r.code, r.out) == (0, DIY_WARNING.format(where="the DIY backend s3://state")), r.err
    assert "s3cr3t" not in r.out + r.err


def test_diy_backend_from_the_project_or_the_credentials_file(typed_project):
    project_yaml = PROJECT + "backend:\n  url: file://~\n"
    write(typed_project / "Pulumi.yaml", project_yaml)
    r = run_script(["check", "--stack", "good"], cwd=typed_project)
    assert r.out == DIY_WARNING.format(where="the DIY backend file://~")
    write(typed_project / "Pulumi.yaml", PROJECT)
    home = typed_project / ".pulumi-home"  # run_script's PULUMI_CREDENTIALS_PATH
    home.mkdir(exist_ok=True)
    (home / "credentials.json").write_text(json.dumps({"current": "gs://bucket"}))
    r = run_script(["check", "--stack", "good"], cwd=typed_project)
    assert r.out == DIY_WARNING.format(where="the DIY backend gs://bucket")
    (home / "credentials.json").write_text(json.dumps({"current": "https://api.pulumi.com"}))
    r = run_script(["check", "--stack", "good"], cwd=typed_project)
    assert (r.code, r.out) == (0, "")


def test_unknown_state_backend_with_a_file_store_is_taken_for_diy(typed_project):
    r = run_script(["check", "--stack", "good"], cwd=typed_project)
    assert (r.code, r.out) == (0, DIY_WARNING.format(where="a DIY backend"))
    r = run_script(["check", "--stack", "good", "--skip-config-validation"], cwd=typed_project)
    assert (r.code, r.out) == (0, "")


def test_declaration_problems_name_the_project_file(typed_project):
    write(typed_project / "Pulumi.yaml", "name: myproj\nruntime: python\nconfig:\n  replicas: {type: int}\n")
    r = run_script(["check", "--stack", "bare"], cwd=typed_project, env=CLOUD)
    assert r.code == 1
    assert r.out.startswith("Pulumi.yaml: error: config key 'replicas' in Pulumi.yaml has an unknown type 'int'")


def test_config_fails_in_the_clis_words_with_the_opt_out(typed_project):
    r = run_script(["config", "--stack", "bad"], cwd=typed_project, env=CLOUD)
    assert (r.code, r.out) == (1, "")
    assert r.err.splitlines() == [
        "esc-pulumi: Stack 'bad' with configuration key 'dbPassword' must be encrypted as it's secret "
        "(from environment myproj/bad; make it a secret in the environment: fn::secret)",
        "Stack 'bad' with configuration key 'replicas' must be of type 'integer' (from the stack file)",
        "Stack 'bad' with configuration key 'tags' must be of type 'array<string>' (from environment myproj/bad)",
        "to skip these checks, pass --skip-config-validation",
    ]
    assert "plain-pw" not in r.err
    r = run_script(["config", "--stack", "bad", "--skip-config-validation", "--json"], cwd=typed_project, env=CLOUD)
    assert r.code == 0, r.err
    assert json.loads(r.out)["myproj:replicas"] == {"value": "3", "secret": False, "source": "stack file"}


def test_config_of_a_good_stack_and_of_one_missing_values(typed_project):
    r = run_script(["config", "--stack", "good", "--json"], cwd=typed_project)
    assert r.code == 0, r.err
    assert json.loads(r.out)["myproj:dbPassword"] == {"secret": True, "source": "environment myproj/good"}
    r = run_script(["config", "--stack", "bare"], cwd=typed_project)
    assert r.code == 1
    assert r.err.startswith("esc-pulumi: Stack 'bare' is missing configuration values 'dbPassword' and 'tags'")


def test_in_process(typed_project, monkeypatch, capsys):
    monkeypatch.chdir(typed_project)
    for k in ("ESC_PULUMI_BACKEND", "PULUMI_STACK"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("PULUMI_BACKEND_URL", "https://api.pulumi.com")
    assert main(["check", "-s", "bad"]) == 1
    assert "must be of type 'integer'" in capsys.readouterr().out
    assert main(["check", "-s", "good"]) == 0
    assert capsys.readouterr().out == ""
