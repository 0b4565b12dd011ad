"""The config a program gets, on the path `pulumi up` uses: each program runs in its own process
started as the language host starts it (esc_pulumi.testing), its PULUMI_CONFIG what the CLI
would deliver, and reports the config it ended up with. Expected texts are the CLI's, by hand."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from esc_pulumi.testing import cli_config, run_program

from .conftest import write

# The program: load(), then report every config key it sees, which are secret, and what load()
# did. (A test program may show secrets; these are test values.)
PROGRAM = """
import json
import pulumi
import esc_pulumi
from pulumi.runtime import config as rc

kwargs = json.loads({kwargs!r})
result = esc_pulumi.load(**kwargs)
pulumi.export("seen", json.dumps(dict(rc.CONFIG.get()), sort_keys=True))
pulumi.export("secretKeys", sorted(rc._SECRET_KEYS.get()))
pulumi.export("appliedByCli", result.applied_by_cli)
pulumi.export("requests", result.requests)
pulumi.export("warnings", list(result.warnings))
"""


def make_project(tmp_path: Path, stack: str, envs: dict[str, str], project_yaml: str = "", program: str = "",
                 load_kwargs: dict | None = None) -> Path:
    root = tmp_path / "proj"
    write(root / "Pulumi.yaml", project_yaml or "name: p\nruntime: python\n")
    write(root / "Pulumi.dev.yaml", stack)
    for name, text in envs.items():
        proj, _, env = name.rpartition("/")
        write(root / "envs" / (proj or "default") / f"{env}.yaml", text)
    body = program or PROGRAM.format(kwargs=json.dumps(load_kwargs or {}))
    (root / "__main__.py").write_text(textwrap.dedent(body))
    return root


def seen(run) -> tuple[dict[str, str], list[str]]:
    run.check()
    return json.loads(run.outputs["seen"]), list(run.outputs["secretKeys"])


ISSUE_PROJECT = "name: p\nruntime: python\nconfig:\n  region: default-region\n"
ISSUE_ENV = "values:\n  pulumiConfig:\n    region: esc-region\n    tags: {org: acme}\n"


def test_cloud_applied_config_is_untouched(tmp_path):
    """Pulumi Cloud with `environment:`: the CLI merged the environment itself; load() changes nothing."""
    root = make_project(
        tmp_path,
        "environment: [e]\nconfig:\n  esc:backend: file://envs\n  p:tags:\n    team: web\n",
        {"e": ISSUE_ENV},
        ISSUE_PROJECT,
    )
    config, secret_keys = cli_config(root, "dev", cloud=True)
    assert config["p:region"] == "esc-region"
    assert config["p:tags"] == '{"org":"acme","team":"web"}'
    got, got_secret = seen(run_program(root, "dev", config=config, secret_keys=secret_keys))
    assert got == config and got_secret == secret_keys
    run = run_program(root, "dev", config=config, secret_keys=secret_keys)
    assert run.outputs["appliedByCli"] is True and run.outputs["requests"] == 0


def test_diy_run_esc_fills_and_replaces_defaults(tmp_path):
    """DIY with esc:environments: the CLI delivered the stack and the defaults; ESC fills in."""
    root = make_project(
        tmp_path,
        "config:\n  esc:backend: file://envs\n  esc:environments: [e]\n  p:tags:\n    team: web\n",
        {"e": ISSUE_ENV},
        ISSUE_PROJECT,
    )
    config, secret_keys = cli_config(root, "dev")
    assert config["p:region"] == "default-region" and config["p:tags"] == '{"team":"web"}'
    got, _ = seen(run_program(root, "dev", config=config, secret_keys=secret_keys))
    assert got["p:region"] == "esc-region"
    assert got["p:tags"] == '{"org":"acme","team":"web"}'


def test_diy_stack_text_is_never_re_rendered(tmp_path):
    root = make_project(
        tmp_path,
        "config:\n  esc:backend: file://envs\n  esc:environments: [e]\n"
        "  p:flag: yes\n  p:price: 123456789.125\n  p:half: 1000000.5\n",
        {"e": "values:\n  pulumiConfig: {flag: no, price: 1, half: 2, other: x}\n"},
    )
    config, secret_keys = cli_config(root, "dev")
    assert (config["p:flag"], config["p:price"], config["p:half"]) == ("yes", "123456789.125", "1000000.5")
    got, _ = seen(run_program(root, "dev", config=config, secret_keys=secret_keys))
    assert (got["p:flag"], got["p:price"], got["p:half"], got["p:other"]) == ("yes", "123456789.125", "1000000.5", "x")
    # Whatever text the CLI delivered is kept byte for byte (a CLI that rendered otherwise).
    odd = {**config, "p:half": "1.0000005e+06"}
    got, _ = seen(run_program(root, "dev", config=odd, secret_keys=secret_keys))
    assert got["p:half"] == "1.0000005e+06"


def test_numbers_get_the_cli_s_text(tmp_path):
    root = make_project(
        tmp_path,
        "config:\n  esc:backend: file://envs\n  esc:environments: [e]\n",
        {"e": "values:\n  pulumiConfig:\n    half: 1000000.5\n    million: 1e6\n    tiny: 1.5e-7\n"
              "    big: 1e21\n    nested: {list: [1e6, 2.50]}\n"},
    )
    config, secret_keys = cli_config(root, "dev")
    got, _ = seen(run_program(root, "dev", config=config, secret_keys=secret_keys))
    assert got["p:half"] == "1000000.5" and got["p:million"] == "1000000" and got["p:tiny"] == "1.5e-7"
    assert got["p:big"] == "1e+21" and got["p:nested"] == '{"list":[1000000,2.5]}'


def test_key_forms_and_odd_key_warning_in_the_engine_log(tmp_path):
    root = make_project(
        tmp_path,
        "config:\n  esc:backend: file://envs\n  esc:environments: [e]\n",
        {"e": "values:\n  pulumiConfig:\n    aws:config:region: eu-west-1\n    ':odd': v\n"},
    )
    config, secret_keys = cli_config(root, "dev")
    run = run_program(root, "dev", config=config, secret_keys=secret_keys)
    got, _ = seen(run)
    assert got["aws:region"] == "eu-west-1" and got[":odd"] == "v"
    warnings = [e.message for e in run.logs if e.severity == "warning"]
    assert any("':odd'" in m and "empty namespace" in m for m in warnings), run.logs


def test_bad_key_fails_the_program_naming_environment_and_key(tmp_path):
    root = make_project(
        tmp_path,
        "config:\n  esc:backend: file://envs\n  esc:environments: [e]\n",
        {"e": "values:\n  pulumiConfig:\n    a:b:c: 1\n"},
    )
    config, secret_keys = cli_config(root, "dev")
    run = run_program(root, "dev", config=config, secret_keys=secret_keys)
    assert run.exit_code != 0
    assert "environment e" in run.stderr and "'a:b:c'" in run.stderr


def test_delivered_secure_leaf_merges_with_esc_object_and_stays_secret(tmp_path):
    root = make_project(
        tmp_path,
        "config:\n  esc:backend: file://envs\n  esc:environments: [e]\n"
        "  p:db:\n    password:\n      secure: v1:AAAA:BBBB\n",
        {"e": "values:\n  pulumiConfig:\n    db: {host: db.internal, password: from-esc}\n"},
    )
    # What the CLI delivers for that stack file: the leaf decrypted, the key secret.
    config = {"esc:backend": "file://envs", "esc:environments": '["e"]', "p:db": '{"password":"hunter2"}'}
    got, secret = seen(run_program(root, "dev", config=config, secret_keys=["p:db"]))
    assert got["p:db"] == '{"host":"db.internal","password":"hunter2"}'
    assert "p:db" in secret


TYPED = "name: p\nruntime: python\nconfig:\n  replicas: {type: integer}\n"


def test_typed_declaration_supplied_by_esc_is_valid(tmp_path):
    root = make_project(
        tmp_path, "config:\n  esc:backend: file://envs\n  esc:environments: [e]\n",
        {"e": "values:\n  pulumiConfig: {replicas: 3}\n"}, TYPED,
    )
    config, secret_keys = cli_config(root, "dev")
    got, _ = seen(run_program(root, "dev", config=config, secret_keys=secret_keys))
    assert got["p:replicas"] == "3"


def test_typed_declaration_of_the_wrong_type_fails_with_the_cli_message(tmp_path):
    root = make_project(
        tmp_path, "config:\n  esc:backend: file://envs\n  esc:environments: [e]\n",
        {"e": "values:\n  pulumiConfig: {replicas: three}\n"}, TYPED,
    )
    config, secret_keys = cli_config(root, "dev")
    run = run_program(root, "dev", config=config, secret_keys=secret_keys)
    assert run.exit_code != 0
    assert "Stack 'dev' with configuration key 'replicas' must be of type 'integer'" in run.stderr
    assert "validate_config=False" in run.stderr
    skipped = make_project(
        tmp_path / "b", "config:\n  esc:backend: file://envs\n  esc:environments: [e]\n",
        {"e": "values:\n  pulumiConfig: {replicas: three}\n"}, TYPED, load_kwargs={"validate_config": False},
    )
    got, _ = seen(run_program(skipped, "dev", config=config, secret_keys=secret_keys))
    assert got["p:replicas"] == "three"


SECRETS_PROGRAM = """
import pulumi
import esc_pulumi

esc_pulumi.load()

class Thing(pulumi.CustomResource):
    def __init__(self, name, props):
        super().__init__("test:index:Thing", name, props)

Thing("raw", {"password": pulumi.Config().get("dbPassword")})
Thing("wrapped", {"password": esc_pulumi.Config().get("dbPassword")})
Thing("required", {"password": pulumi.Config().require_secret("dbPassword"), "plain": pulumi.Config().get("plain")})
"""


def test_secrets_on_the_wire(tmp_path):
    root = make_project(
        tmp_path, "config:\n  esc:backend: file://envs\n  esc:environments: [e]\n",
        {"e": "values:\n  pulumiConfig:\n    dbPassword: {fn::secret: hunter2}\n    plain: visible\n"},
        program=SECRETS_PROGRAM,
    )
    config, secret_keys = cli_config(root, "dev")
    run = run_program(root, "dev", config=config, secret_keys=secret_keys).check()
    # The SDK's documented behaviour: pulumi.Config().get() on a secret key sends plaintext.
    raw = run.resource("raw")
    assert raw.inputs["password"] == "hunter2" and raw.secret_paths == ()
    # esc_pulumi.Config and require_secret keep it wrapped on the wire.
    assert run.resource("wrapped").secret_paths == ("password",)
    required = run.resource("required")
    assert required.secret_paths == ("password",) and required.inputs["plain"] == "visible"
