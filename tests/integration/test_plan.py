"""Finding the project and stack, the environment list, and the settings order."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from esc_pulumi.backends import backend_from_url
from esc_pulumi.backends.cloud import CloudBackend
from esc_pulumi.backends.local import LocalBackend
from esc_pulumi.errors import ConfigurationError, InvalidReference
from esc_pulumi.workspace.plan import make_plan
from esc_pulumi.backends.credentials import access_token

from .conftest import write

STACK = """
config:
  esc:backend: file://envs
  esc:environments: [a, myproj/b@stable]
"""


def test_project_found_upward_and_stack_from_argument(project, monkeypatch):
    root = project(STACK)
    (root / "sub" / "deeper").mkdir(parents=True)
    monkeypatch.chdir(root / "sub" / "deeper")
    plan = make_plan("dev")
    assert plan.project == "myproj" and plan.stack == "dev"
    assert plan.project_dir == root.resolve()
    assert plan.environments == ("a", "myproj/b@stable")
    assert plan.list_source == "esc:environments"
    assert plan.composition == {"imports": ["a", "myproj/b@stable"]}
    assert isinstance(plan.backend, LocalBackend) and plan.backend.root == root.resolve() / "envs"


def test_stack_from_pulumi_stack_variable(project, monkeypatch):
    root = project(STACK)
    monkeypatch.setenv("PULUMI_STACK", "dev")
    assert make_plan(project_dir=root).stack == "dev"


def test_no_stack_is_a_clear_error(project):
    root = project(STACK)
    with pytest.raises(ConfigurationError, match="no stack selected.*PULUMI_STACK"):
        make_plan(project_dir=root)


def test_no_project_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError, match="no Pulumi.yaml found"):
        make_plan("dev")


def test_missing_stack_file(project):
    root = project(None)
    with pytest.raises(ConfigurationError, match=r"stack file .*Pulumi\.prod\.yaml not found"):
        make_plan("prod", root)


def test_malformed_stack_file_names_file_line_column(project):
    root = project("config:\n  a: [1, 2\n  b: c\n")
    with pytest.raises(ConfigurationError, match=r"Pulumi\.dev\.yaml:\d+:\d+: malformed"):
        make_plan("dev", root)


def test_stack_file_not_a_mapping(project):
    root = project("- just\n- a list\n")
    with pytest.raises(ConfigurationError, match="expected a mapping"):
        make_plan("dev", root)


def test_both_lists_present_is_an_error(project):
    root = project("environment: [a]\nconfig:\n  esc:environments: [b]\n")
    with pytest.raises(ConfigurationError, match="both 'environment:' and .*esc:environments"):
        make_plan("dev", root)


def test_environment_list_form(project):
    root = project("environment:\n  - aws-dev\n  - myproj/app@3\n")
    plan = make_plan("dev", root)
    assert plan.list_source == "environment"
    assert plan.composition == {"imports": ["aws-dev", "myproj/app@3"]}
    assert not plan.applied_by_cli  # not under the real CLI


def test_environment_mapping_form_kept_whole(project):
    root = project(
        """
        environment:
          imports:
            - base
            - extra: {merge: false}
          values:
            pulumiConfig:
              inline: yes
        """
    )
    plan = make_plan("dev", root)
    assert plan.environments == ("base", "extra")
    assert plan.composition == {
        "imports": ["base", {"extra": {"merge": False}}],
        "values": {"pulumiConfig": {"inline": "yes"}},
    }


def test_argument_list_wins(project):
    root = project(STACK)
    plan = make_plan("dev", root, environments=["x", "y"])
    assert plan.list_source == "argument" and plan.environments == ("x", "y")


def test_esc_environments_as_text(project):
    root = project('config:\n  esc:environments: "a, b"\n')
    assert make_plan("dev", root).environments == ("a", "b")
    root = project('config:\n  esc:environments: \'["c","d"]\'\n')
    assert make_plan("dev", root).environments == ("c", "d")


def test_invalid_reference(project):
    root = project("config:\n  esc:environments: [org/proj/env]\n")
    with pytest.raises(InvalidReference, match="org/proj/env"):
        make_plan("dev", root)


def test_no_environments(project):
    root = project("config:\n  myproj:a: b\n")
    plan = make_plan("dev", root)
    assert plan.composition is None and plan.environments == ()


def test_stack_config_dir_and_json_project(tmp_path):
    root = tmp_path / "p"
    write(root / "Pulumi.json", json.dumps({"name": "jp", "runtime": "python", "stackConfigDir": "stacks"}))
    write(root / "stacks" / "Pulumi.prod.json", json.dumps({"config": {"x": "1", "esc:environments": ["e"]}}))
    plan = make_plan("org/jp/prod", root)
    assert plan.stack_config["jp:x"] == "1"
    assert plan.environments == ("e",)


def test_yml_project_and_stack(tmp_path):
    root = tmp_path / "p"
    write(root / "Pulumi.yml", "name: yp\nruntime: python\nconfig:\n  size: {type: string, default: small}\n  aws:region: us-east-1\n  bare: {type: string}\n")
    write(root / "Pulumi.dev.yml", "config:\n  k: v\n")
    plan = make_plan("dev", root)
    assert plan.stack_config == {"yp:k": "v"}
    assert plan.project_defaults == {"yp:size": "small", "aws:region": "us-east-1"}


def test_bad_config_key_in_stack_file(project):
    root = project("config:\n  a:b:c: 1\n")
    with pytest.raises(ConfigurationError, match="'a:b:c'"):
        make_plan("dev", root)


# -- settings order ---------------------------------------------------------------------------


def test_settings_order_argument_env_stack_default(project, monkeypatch):
    root = project("config:\n  esc:backend: https://stack.example\n  esc:organization: stackorg\n  esc:environments: [a]\n")
    plan = make_plan("dev", root)
    assert plan.backend.url == "https://stack.example" and plan.organization == "stackorg"
    monkeypatch.setenv("ESC_PULUMI_BACKEND", "https://env.example")
    monkeypatch.setenv("ESC_PULUMI_ORGANIZATION", "envorg")
    plan = make_plan("dev", root)
    assert plan.backend.url == "https://env.example" and plan.organization == "envorg"
    plan = make_plan("dev", root, backend="http://127.0.0.1:1", organization="argorg")
    assert plan.backend.url == "http://127.0.0.1:1" and plan.organization == "argorg"


def test_default_backend_ignores_file_state_url(project, monkeypatch):
    root = project("config:\n  esc:environments: [a]\n")
    monkeypatch.setenv("PULUMI_BACKEND_URL", "file://~/.pulumi-state")
    plan = make_plan("dev", root)
    assert plan.backend.url == "https://api.pulumi.com"
    monkeypatch.setenv("PULUMI_BACKEND_URL", "http://127.0.0.1:9/")
    assert make_plan("dev", root).backend.url == "http://127.0.0.1:9"


def test_backend_from_url(tmp_path):
    local = backend_from_url("file://defs", project_dir=tmp_path)
    assert isinstance(local, LocalBackend) and local.root == tmp_path / "defs"
    assert backend_from_url("file:///abs/defs").root == Path("/abs/defs")
    assert isinstance(backend_from_url("https://api.example.com"), CloudBackend)
    for bad in ("s3://bucket", "ftp://x", "envs", ""):
        with pytest.raises(ConfigurationError):
            backend_from_url(bad)


def test_token_from_env_then_credentials_file(tmp_path, monkeypatch):
    creds = tmp_path / "c"
    write(
        creds / "credentials.json",
        json.dumps(
            {
                "current": "file://~",
                "accessTokens": {"https://api.pulumi.com": "pul-file", "http://127.0.0.1:8080": "pul-local"},
            }
        ),
    )
    env = {"PULUMI_CREDENTIALS_PATH": str(creds)}
    assert access_token("https://api.pulumi.com", env).value == "pul-file"
    assert access_token("http://127.0.0.1:8080", env).value == "pul-local"
    missing = access_token("https://other.example", env)
    assert missing.value is None and "no token for https://other.example" in missing.source
    assert access_token("https://x", {**env, "PULUMI_ACCESS_TOKEN": "pul-env"}).value == "pul-env"
    assert "pul-env" not in repr(access_token("https://x", {**env, "PULUMI_ACCESS_TOKEN": "pul-env"}))
