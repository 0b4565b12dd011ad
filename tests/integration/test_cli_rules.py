"""The Pulumi CLI's config rules (spec/pulumi-integration.md), case by case, on compute_config:
number text, yaml.v3 typing of the stack file, key forms, {secure:} leaves, and what the CLI
delivered inside a run. Expected texts are the CLI's, written out by hand from the spec."""
from __future__ import annotations

import warnings

import pytest

from esc_pulumi.backends.base import OpenedEnvironment
from esc_pulumi.backends.local import LocalBackend
from esc_pulumi.esc import Value
from esc_pulumi.esc.values import from_plain
from esc_pulumi.errors import MappingError
from esc_pulumi.workspace.mapping import Delivered, compute_config
from esc_pulumi.workspace.plan import make_plan
from esc_pulumi.workspace.rendering import config_text, number_text


def opened(pulumi_config: dict) -> OpenedEnvironment:
    return OpenedEnvironment(from_plain({"pulumiConfig": pulumi_config}))


def open_file(root, text: str) -> OpenedEnvironment:
    """The environment `e` (written under envs/) evaluated by the engine: real YAML numbers."""
    (root / "envs" / "default").mkdir(parents=True, exist_ok=True)
    (root / "envs" / "default" / "e.yaml").write_text(text)
    return LocalBackend(root / "envs").open({"imports": ["e"]})


@pytest.mark.parametrize(
    "number, text",
    [
        (42, "42"),
        (3.0, "3"),
        (1000000.5, "1000000.5"),
        (1e6, "1000000"),
        (1.5e-7, "1.5e-7"),
        (1e-6, "0.000001"),
        (1e21, "1e+21"),
        (123456789.125, "123456789.125"),
        (18446744073709551615, "18446744073709552000"),
        (-(2**63), "-9223372036854775808"),
        (2**63 - 1, "9223372036854775807"),
        (0.1, "0.1"),
        (-2.5e-300, "-2.5e-300"),
    ],
)
def test_number_text(number, text):
    assert number_text(number) == text


def test_numbers_from_the_engine_nested_too(project):
    root = project("config:\n  esc:environments: [e]\n")
    env = open_file(
        root,
        "values:\n"
        "  pulumiConfig:\n"
        "    half: 1000000.5\n"
        "    million: 1e6\n"
        "    tiny: 1.5e-7\n"
        "    big: 18446744073709551615\n"
        "    nested: {a: [1e6, 3.0], b: 1.5e-7}\n"
        "    parsed:\n"
        "      fn::fromJSON: '{\"x\": 1.50, \"y\": 100}'\n",
    )
    v = compute_config(make_plan("dev", root), env).values()
    assert v["myproj:half"] == "1000000.5"
    assert v["myproj:million"] == "1000000"
    assert v["myproj:tiny"] == "1.5e-7"
    assert v["myproj:big"] == "18446744073709552000"
    assert v["myproj:nested"] == '{"a":[1000000,3],"b":1.5e-7}'
    assert v["myproj:parsed"] == '{"x":1.5,"y":100}'


def test_stack_file_typed_by_yaml_v3(project):
    root = project(
        "config:\n"
        "  myproj:flag: yes\n"
        "  myproj:switch: on\n"
        "  myproj:half: 1000000.5\n"
        "  myproj:price: 123456789.125\n"
        "  myproj:million: 1e6\n"
        "  myproj:octal: 0o17\n"
        "  myproj:real: true\n"
        "  myproj:when: 2001-12-14\n"
        "  myproj:obj: {n: 1e6, s: no}\n",
        project_yaml="name: myproj\nruntime: python\nconfig:\n  dflt: 0x1F\n",
    )
    v = compute_config(make_plan("dev", root, environments=[]), None).values()
    assert v["myproj:flag"] == "yes" and v["myproj:switch"] == "on"
    assert v["myproj:half"] == "1000000.5" and v["myproj:price"] == "123456789.125"
    assert v["myproj:million"] == "1000000" and v["myproj:octal"] == "15"
    assert v["myproj:real"] == "true" and v["myproj:when"] == "2001-12-14"
    assert v["myproj:obj"] == '{"n":1000000,"s":"no"}'
    assert v["myproj:dflt"] == "31"


def test_config_text_go_escaping_and_order():
    assert config_text({"b": "<&>", "a": [None, True, 2.50]}) == '{"a":[null,true,2.5],"b":"\\u003c\\u0026\\u003e"}'


def test_key_forms(project):
    root = project("config:\n  esc:environments: [e]\n")
    r = compute_config(make_plan("dev", root), opened({"aws:config:region": "r", ":odd": 1, "tail:": 2}))
    assert r.values()["aws:region"] == "r"
    assert r.values()[":odd"] == "1" and r.values()["tail:"] == "2"
    assert len(r.warnings) == 2
    assert any("':odd'" in w and "empty namespace" in w for w in r.warnings)
    assert any("'tail:'" in w and "empty name" in w for w in r.warnings)


def test_bad_key_names_the_environment(project):
    root = project("config:\n  esc:environments: [e]\n")
    env = open_file(root, "values:\n  pulumiConfig:\n    a:b:c: 1\n")
    with pytest.raises(MappingError) as e:
        compute_config(make_plan("dev", root), env)
    assert "environment e" in str(e.value) and "'a:b:c'" in str(e.value)


def test_old_form_and_new_form_of_one_key_collide(project):
    root = project("config:\n  esc:environments: [e]\n")
    with pytest.raises(MappingError, match="both mean config key 'aws:region'"):
        compute_config(make_plan("dev", root), opened({"aws:region": 1, "aws:config:region": 2}))


def test_odd_key_warns_through_load(project):
    import esc_pulumi

    root = project("config:\n  esc:environments: [e]\n  esc:backend: file://envs\n")
    open_file(root, "values:\n  pulumiConfig:\n    ':k': v\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = esc_pulumi.load("dev", root)
    assert result.config[":k"] == "v"
    assert [w.category for w in caught] == [esc_pulumi.EscWarning]
    assert result.warnings and "':k'" in result.warnings[0]


def test_secure_leaf_merges_with_the_esc_object(project):
    root = project("config:\n  esc:environments: [e]\n  myproj:db:\n    password:\n      secure: v1:AAAA:BBBB\n")
    r = compute_config(make_plan("dev", root), opened({"db": {"host": "h", "port": 5432}}))
    e = r.entries["myproj:db"]
    assert e.secret and e.encrypted and "myproj:db" in r.secret_keys
    # The ESC sub-keys are kept; the undecryptable leaf is shown masked, never applied.
    assert e.value == '{"host":"h","password":"[secret]","port":5432}'
    assert "myproj:db" not in r.values()


def test_secure_leaf_decrypted_and_merged(project):
    root = project("config:\n  esc:environments: [e]\n  myproj:db:\n    password:\n      secure: v1:AAAA:BBBB\n")

    def decrypt(ciphertext: str, key: str) -> str:
        assert ciphertext == "v1:AAAA:BBBB" and key == "myproj:db"
        return "hunter2"

    r = compute_config(make_plan("dev", root), opened({"db": {"host": "h"}}), decrypt=decrypt)
    e = r.entries["myproj:db"]
    assert not e.encrypted and e.secret
    assert r.values()["myproj:db"] == '{"host":"h","password":"hunter2"}'
    assert "hunter2" not in repr(r)


# -- inside a run: what the CLI delivered ----------------------------------------------------

ISSUE_PROJECT = "name: p\nruntime: python\nconfig:\n  region: default-region\n"
ESC = {"region": "esc-region", "tags": {"org": "acme"}}


def _issue_plan(project, stack_env: str):
    root = project(stack_env + "config:\n  p:tags:\n    team: web\n", project_yaml=ISSUE_PROJECT)
    return make_plan("dev", root)


def test_diy_run_esc_fills_and_merges_under_the_cli_json(project):
    plan = _issue_plan(project, "")
    plan = make_plan("dev", plan.project_dir, environments=["e"])
    delivered = Delivered({"p:region": "default-region", "p:tags": '{"team":"web"}'})
    r = compute_config(plan, opened(ESC), delivered=delivered)
    assert r.values() == {"p:region": "esc-region", "p:tags": '{"org":"acme","team":"web"}'}
    assert r.entries["p:region"].source.startswith("environment")
    assert r.overridden == ("p:tags",)


def test_cloud_applied_config_untouched(project):
    import dataclasses

    plan = _issue_plan(project, "environment: [e]\n").replace(applied_by_cli=True)
    cli = {"p:region": "esc-region", "p:tags": '{"org":"acme","team":"web"}'}
    r = compute_config(plan, None, delivered=Delivered(cli))
    assert r.values() == cli


def test_delivered_stack_text_is_never_re_rendered(project):
    root = project("config:\n  myproj:flag: yes\n  myproj:n: 1e6\n  esc:environments: [e]\n")
    plan = make_plan("dev", root)
    # What a CLI delivered (whatever its rendering): kept byte for byte, ESC only fills.
    delivered = Delivered({"myproj:flag": "yes", "myproj:n": "1000000", "esc:environments": '["e"]'},
                          frozenset({"myproj:flag"}))
    r = compute_config(plan, opened({"flag": True, "n": 2, "new": 1.5e-7}), delivered=delivered)
    v = r.values()
    assert v["myproj:flag"] == "yes" and v["myproj:n"] == "1000000" and v["myproj:new"] == "1.5e-7"
    assert v["esc:environments"] == '["e"]'
    assert r.secret_keys == {"myproj:flag"}
    assert set(r.overridden) == {"myproj:flag", "myproj:n"}


def test_delivered_object_merge_keeps_cli_secrecy(project):
    root = project("config:\n  myproj:db:\n    password:\n      secure: v1:AAAA:BBBB\n  esc:environments: [e]\n")
    plan = make_plan("dev", root)
    delivered = Delivered({"myproj:db": '{"password":"hunter2"}'}, frozenset({"myproj:db"}))
    r = compute_config(plan, opened({"db": {"host": "h", "password": "esc"}}), delivered=delivered)
    assert r.values()["myproj:db"] == '{"host":"h","password":"hunter2"}'
    assert "myproj:db" in r.secret_keys


def test_delivered_esc_secret_leaf_makes_merged_key_secret(project):
    root = project("config:\n  myproj:db: {user: u}\n  esc:environments: [e]\n")
    pc = Value({"db": Value({"pw": Value("s3cret", secret=True)})})
    r = compute_config(
        make_plan("dev", root),
        OpenedEnvironment(Value({"pulumiConfig": pc})),
        delivered=Delivered({"myproj:db": '{"user":"u"}'}),
    )
    assert r.values()["myproj:db"] == '{"pw":"s3cret","user":"u"}'
    assert "myproj:db" in r.secret_keys


# -- which stack, which ESC host ---------------------------------------------------------------

def _select(root, stack: str) -> None:
    """What `pulumi stack select` writes."""
    import hashlib
    import json
    import os
    from pathlib import Path

    project_file = (root / "Pulumi.yaml").resolve()
    digest = hashlib.sha1(str(project_file).encode()).hexdigest()
    folder = Path(os.environ["PULUMI_HOME"]) / "workspaces"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"myproj-{digest}-workspace.json").write_text(json.dumps({"stack": stack}))


def test_selected_stack_is_used(project, monkeypatch):
    root = project("config:\n  myproj:a: from-prod\n", stack_name="prod")
    _select(root, "acme/myproj/prod")
    plan = make_plan(None, root, environments=[])
    assert plan.stack == "acme/myproj/prod"
    assert compute_config(plan, None).values()["myproj:a"] == "from-prod"
    monkeypatch.setenv("PULUMI_STACK", "dev")  # PULUMI_STACK comes first
    assert make_plan(None, root, environments=[]).stack == "dev"


def test_selected_stack_in_the_cli(project, monkeypatch):
    import subprocess
    import sys

    root = project("config:\n  myproj:a: from-prod\n", stack_name="prod")
    _select(root, "prod")
    out = subprocess.run(
        [sys.executable, "-m", "esc_pulumi.cli", "config", "--cwd", str(root)],
        capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stderr
    assert "from-prod" in out.stdout


def test_esc_host_follows_an_http_current_login(project, monkeypatch):
    import json
    import os
    from pathlib import Path

    root = project("config:\n  esc:environments: [e]\n")
    creds = Path(os.environ["PULUMI_CREDENTIALS_PATH"]) / "credentials.json"
    creds.write_text(json.dumps({"current": "https://esc.example.test/", "accessTokens": {}}))
    plan = make_plan("dev", root)
    assert plan.backend.url == "https://esc.example.test"
    assert "current" in plan.backend_source
    creds.write_text(json.dumps({"current": "file:///srv/state"}))
    assert make_plan("dev", root).backend.url == "https://api.pulumi.com"
