"""esc_pulumi.load(): applying config in place, environment variables, files, all or nothing."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pulumi
import pytest

import esc_pulumi
from esc_pulumi.backends.local import LocalBackend
from esc_pulumi.secrets.crypto import AesGcmCipher, key_from_passphrase
from esc_pulumi.secrets.definitions import encrypt_secrets
from esc_pulumi.errors import (
    AuthenticationError,
    ConfigurationError,
    DecryptionError,
    DefinitionError,
    EnvironmentNotFound,
    EscError,
)

from .conftest import ROOT, NullMocks, await_output, runtime_config

SECRET = "hunter2-very-secret"

BASE = """
values:
  region: eu-west-1
  pulumiConfig:
    aws:region: ${region}
    name: base
    tags: {team: a, env: base}
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
    tags: {{env: dev}}
    replicas: 3
    flag: true
  environmentVariables:
    STAGE: dev
    DB_PASSWORD: ${{password}}
    IGNORED: {{an: object}}
  files:
    SETTINGS_FILE: "host = db\\n"
    SECRET_FILE: ${{password}}
"""
STACK = "config:\n  esc:backend: file://envs\n  esc:environments: [base, dev]\n  myproj:tags: {owner: me}\n"


@pytest.fixture
def app(project):
    return project(STACK, {"base": BASE, "dev": DEV})


def assert_nothing_applied(before_env: dict[str, str]) -> None:
    config, secret = runtime_config()
    assert config == {} and secret == set()
    assert dict(os.environ) == before_env


def test_load_applies_config_in_place(app):
    config_before, secret_before = runtime_config()
    result = esc_pulumi.load("dev", app)
    config, secret = runtime_config()
    assert config is config_before and secret is secret_before  # same objects, updated in place
    assert config["aws:region"] == "eu-west-1"
    assert config["myproj:name"] == "dev"  # later environment wins
    assert config["myproj:replicas"] == "3" and config["myproj:flag"] == "true"
    assert config["myproj:tags"] == '{"env":"dev","owner":"me","team":"a"}'
    assert secret == {"myproj:dbPassword"}
    assert result.environments == ("base", "dev")
    assert result.overridden == ("myproj:tags",)
    assert result.sources["myproj:dbPassword"] == "environment dev"
    assert result.sources["aws:region"] == "environment base"

    cfg = pulumi.Config("myproj")
    assert await_output(cfg.require_secret("dbPassword")) == (SECRET, True)
    assert cfg.get_object("tags") == {"env": "dev", "owner": "me", "team": "a"}
    assert cfg.require_int("replicas") == 3 and cfg.require_bool("flag") is True


def test_environment_variables_and_files(app):
    result = esc_pulumi.load("dev", app)
    assert os.environ["STAGE"] == "dev" and os.environ["DB_PASSWORD"] == SECRET
    assert "IGNORED" not in os.environ
    assert result.secret_variables == {"DB_PASSWORD", "SECRET_FILE"}
    for name, content in (("SETTINGS_FILE", "host = db\n"), ("SECRET_FILE", SECRET)):
        path = Path(os.environ[name])
        assert result.files[name] == str(path)
        assert path.read_text() == content
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_options_switch_off_environment_and_files(app):
    before = dict(os.environ)
    result = esc_pulumi.load("dev", app, set_environment_variables=False, write_files=False)
    assert dict(os.environ) == before and result.files == {}
    assert runtime_config()[0]["myproj:name"] == "dev"


def test_apply_false_touches_nothing(app):
    before = dict(os.environ)
    result = esc_pulumi.load("dev", app, apply=False)
    assert not result.applied and result.config["myproj:name"] == "dev"
    assert_nothing_applied(before)


def test_repr_never_shows_a_secret(app):
    result = esc_pulumi.load("dev", app)
    for text in (repr(result), str(result), repr(result.config), repr(result.environment_variables)):
        assert SECRET not in text
    assert "[secret]" in repr(result)


def test_files_removed_at_exit(app, tmp_path):
    script = (
        "import esc_pulumi, os, sys\n"
        f"r = esc_pulumi.load('dev', {str(app)!r})\n"
        "print(*r.files.values(), sep='\\n')\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    paths = out.stdout.split()
    assert len(paths) == 2 and not any(Path(p).exists() for p in paths)


class Counting:
    """A backend that counts opens (wraps the real local backend)."""

    def __init__(self, inner: LocalBackend) -> None:
        self.inner, self.url, self.opens = inner, inner.url, 0

    def open(self, definition, **kw):
        self.opens += 1
        return self.inner.open(definition, **kw)


def test_load_twice_opens_nothing_twice(app):
    backend = Counting(LocalBackend(app / "envs"))
    first = esc_pulumi.load("dev", app, backend=backend)
    second = esc_pulumi.load("dev", app, backend=backend)
    assert second is first and backend.opens == 1
    # A new run (a fresh config dict) opens again.
    from pulumi.runtime import config as rconfig

    rconfig.set_all_config({}, [])
    esc_pulumi.load("dev", app, backend=backend)
    assert backend.opens == 2
    assert runtime_config()[0]["myproj:name"] == "dev"


def test_environment_key_not_reopened_under_the_real_cli(project, monkeypatch):
    import json

    from pulumi.runtime import config as rconfig, settings

    root = project("environment: [dev]\nconfig:\n  myproj:x: from-stack\n", {"dev": "values: {pulumiConfig: {y: 2}}"})
    # What the CLI delivers for a Pulumi Cloud stack: the stack file and its environment merged.
    delivered = {"myproj:x": "from-stack", "myproj:y": "1"}
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(delivered))
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", "[]")
    rconfig.set_all_config(rconfig.get_config_env(), [])
    settings.SETTINGS.monitor = object()  # a real engine's monitor, not the mocks'
    backend = Counting(LocalBackend(root / "envs"))
    result = esc_pulumi.load("dev", root, backend=backend)
    assert backend.opens == 0 and result.applied_by_cli
    assert runtime_config()[0] == delivered and dict(result.config) == delivered


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # set_mocks' own root stack RPC, never awaited here
def test_environment_key_opened_under_mocks(project):
    root = project("environment: [dev]\n", {"dev": "values: {pulumiConfig: {y: 1}}"})
    pulumi.runtime.set_mocks(NullMocks(), project="myproj", stack="dev")
    result = esc_pulumi.load(project_dir=root, backend="file://envs")  # the stack from the mocks
    assert not result.applied_by_cli and runtime_config()[0]["myproj:y"] == "1"


def test_found_from_the_cwd_like_a_program(app, monkeypatch):
    monkeypatch.chdir(app)
    monkeypatch.setenv("PULUMI_STACK", "dev")
    assert esc_pulumi.load().config["myproj:name"] == "dev"


# -- all or nothing ---------------------------------------------------------------------------


def test_unknown_environment(project):
    root = project("config:\n  esc:backend: file://envs\n  esc:environments: [base, nope]\n", {"base": BASE})
    before = dict(os.environ)
    with pytest.raises(EnvironmentNotFound, match=r"'nope' not found: no file .*envs/default/nope\.yaml"):
        esc_pulumi.load("dev", root)
    assert_nothing_applied(before)


def test_definition_errors_give_file_line_column(project):
    broken = "values:\n  a: ok\n  b: ${missing.thing}\n  pulumiConfig:\n    x: ${a}\n"
    root = project("config:\n  esc:backend: file://envs\n  esc:environments: [myproj/broken]\n", {"myproj/broken": broken})
    before = dict(os.environ)
    with pytest.raises(DefinitionError) as e:
        esc_pulumi.load("dev", root)
    assert "envs/myproj/broken.yaml:3:" in str(e.value) and "missing" in str(e.value)
    assert e.value.diagnostics
    assert_nothing_applied(before)


def test_yaml_syntax_error_in_definition(project):
    root = project("config:\n  esc:backend: file://envs\n  esc:environments: [bad]\n", {"bad": "values: [unclosed\n"})
    with pytest.raises(DefinitionError):
        esc_pulumi.load("dev", root)
    assert runtime_config()[0] == {}


def encrypted(text: str, passphrase: str) -> str:
    return encrypt_secrets(text, AesGcmCipher(key_from_passphrase(passphrase)).encrypt)


def test_ciphertext_decrypted_with_the_passphrase(project, monkeypatch):
    root = project(STACK, {"base": BASE, "dev": encrypted(DEV, "right")})
    assert SECRET not in (root / "envs/default/dev.yaml").read_text()
    monkeypatch.setenv("ESC_PULUMI_PASSPHRASE", "right")
    esc_pulumi.load("dev", root)
    config, secret = runtime_config()
    assert config["myproj:dbPassword"] == SECRET and "myproj:dbPassword" in secret


def test_wrong_passphrase(project, monkeypatch):
    root = project(STACK, {"base": BASE, "dev": encrypted(DEV, "right")})
    monkeypatch.setenv("ESC_PULUMI_PASSPHRASE", "wrong")
    before = dict(os.environ)
    with pytest.raises(DecryptionError, match=r"envs/default/dev\.yaml:\d+:\d+: .*wrong ESC_PULUMI_PASSPHRASE") as e:
        esc_pulumi.load("dev", root)
    assert SECRET not in str(e.value)
    assert_nothing_applied(before)


def test_ciphertext_without_a_key(project):
    root = project(STACK, {"base": BASE, "dev": encrypted(DEV, "right")})
    with pytest.raises(DecryptionError, match="set ESC_PULUMI_PASSPHRASE or ESC_PULUMI_KEY_FILE"):
        esc_pulumi.load("dev", root)
    assert runtime_config()[0] == {}


def test_file_state_url_is_never_an_esc_host(project, monkeypatch):
    root = project("config:\n  esc:environments: [dev]\n  esc:organization: acme\n")
    monkeypatch.setenv("PULUMI_BACKEND_URL", "file://~/.pulumi-state")
    before = dict(os.environ)
    with pytest.raises(AuthenticationError, match=r"no access token for https://api\.pulumi\.com"):
        esc_pulumi.load("dev", root)
    assert_nothing_applied(before)


def test_cloud_without_organization(project, monkeypatch):
    root = project("config:\n  esc:environments: [dev]\n")
    monkeypatch.setenv("PULUMI_ACCESS_TOKEN", "pul-x")
    with pytest.raises(ConfigurationError, match="ESC_PULUMI_ORGANIZATION"):
        esc_pulumi.load("dev", root)


def test_failure_while_writing_files_removes_what_was_written(app, monkeypatch, tmp_path):
    import tempfile

    written: list[str] = []
    real = tempfile.mkstemp

    def mkstemp(*a, **kw):
        if written:
            raise PermissionError(13, "Permission denied")
        fd, path = real(*a, **kw)
        written.append(path)
        return fd, path

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    before = dict(os.environ)
    with pytest.raises(EscError, match="cannot write the projected file"):
        esc_pulumi.load("dev", app)
    assert written and not Path(written[0]).exists()
    assert_nothing_applied(before)


def test_every_error_is_an_esc_error():
    for name in ("ConfigurationError", "DefinitionError", "EnvironmentNotFound", "AuthenticationError",
                 "BackendError", "DecryptionError", "MappingError", "InvalidReference", "PermissionDenied"):
        assert issubclass(getattr(esc_pulumi, name), esc_pulumi.EscError)


# -- Config and provider_args -----------------------------------------------------------------


def test_config_returns_secret_outputs_for_secret_keys(app):
    esc_pulumi.load("dev", app)
    cfg = esc_pulumi.Config("myproj")
    assert cfg.get("name") == "dev"  # plain keys: plain values
    assert isinstance(cfg.get("dbPassword"), pulumi.Output)
    assert await_output(cfg.require("dbPassword")) == (SECRET, True)
    assert cfg.get("absent") is None and cfg.get("absent", "d") == "d"
    with pytest.raises(pulumi.config.ConfigMissingError):
        cfg.require("absent")


def test_config_type_error_hides_the_secret(app):
    esc_pulumi.load("dev", app)
    with pytest.raises(pulumi.config.ConfigTypeError) as e:
        esc_pulumi.Config("myproj").require_int("dbPassword")
    assert SECRET not in str(e.value) and "myproj:dbPassword" in str(e.value)


def test_provider_args(project):
    root = project(
        "config:\n  esc:backend: file://envs\n  esc:environments: [p]\n",
        {
            "p": "values:\n  pulumiConfig:\n    aws:region: eu-west-1\n    aws:skipCredentialsValidation: true\n"
            "    aws:assumeRole: {roleArn: 'arn:aws:iam::1:role/x'}\n    aws:secretKey: {fn::secret: k3y-s3cret}\n"
            "    gcp:project: other\n"
        },
    )
    esc_pulumi.load("dev", root)
    args = esc_pulumi.provider_args("aws")
    assert set(args) == {"region", "skip_credentials_validation", "assume_role", "secret_key"}
    assert args["region"] == "eu-west-1" and args["skip_credentials_validation"] == "true"
    assert args["assume_role"] == {"roleArn": "arn:aws:iam::1:role/x"}
    assert await_output(args["secret_key"]) == ("k3y-s3cret", True)


def test_import_is_cheap():
    code = (
        "import sys, esc_pulumi\n"
        "heavy = [m for m in ('pulumi', 'pulumi_esc_sdk', 'esc_pulumi.esc', 'yaml', 'pydantic') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT, timeout=60)
    assert out.stdout.strip() == "[]"


def test_local_load_does_not_import_the_esc_sdk(app):
    code = (
        "import sys, esc_pulumi\n"
        f"esc_pulumi.load('dev', {str(app)!r})\n"
        "print('pulumi_esc_sdk' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "False"


def test_inline_mapping_and_versions_on_the_local_backend(project):
    root = project(
        "environment:\n  imports: [base@latest, myproj/app@stable]\n  values:\n    pulumiConfig:\n      inline: here\n"
        "config:\n  esc:backend: file://envs\n",
        {"base": BASE, "myproj/app@stable": "values: {pulumiConfig: {pinned: yes}}"},
    )
    result = esc_pulumi.load("dev", root)
    assert result.config["myproj:inline"] == "here" and result.config["myproj:pinned"] == "yes"
    assert result.sources["myproj:inline"] == "environment Pulumi.dev.yaml (inline)"
    assert result.sources["myproj:pinned"] == "environment myproj/app@stable"


def test_unknown_tag_on_the_local_backend(project):
    root = project("config:\n  esc:backend: file://envs\n  esc:environments: [base@v9]\n", {"base": BASE})
    with pytest.raises(EnvironmentNotFound, match="no revision or tag 'v9'"):
        esc_pulumi.load("dev", root)
    assert runtime_config()[0] == {}


def test_a_later_load_takes_back_what_the_earlier_one_set(project, monkeypatch):
    import os

    monkeypatch.setenv("KEEP_ME", "original")
    root = project(
        "config:\n  esc:backend: file://envs\n  esc:environments: [a]\n",
        {
            "a": "values:\n  pulumiConfig: {onlyA: 1, both: a}\n  environmentVariables: {ONLY_A: x, KEEP_ME: changed}\n"
            "  files: {A_FILE: content-a}\n",
            "b": "values:\n  pulumiConfig: {both: b}\n  environmentVariables: {ONLY_B: y}\n",
        },
    )
    first = esc_pulumi.load("dev", root)
    a_file = first.files["A_FILE"]
    assert os.environ["ONLY_A"] == "x" and os.environ["KEEP_ME"] == "changed" and os.path.exists(a_file)
    second = esc_pulumi.load("dev", root, environments=["b"])
    config = runtime_config()[0]
    assert config["myproj:both"] == "b" and "myproj:onlyA" not in config
    assert "ONLY_A" not in os.environ and "A_FILE" not in os.environ and not os.path.exists(a_file)
    assert os.environ["KEEP_ME"] == "original" and os.environ["ONLY_B"] == "y"
    assert second.environments == ("b",)


def test_a_failing_later_load_leaves_the_earlier_one_in_place(project):
    import os

    from esc_pulumi.errors import EscError

    root = project(
        "config:\n  esc:backend: file://envs\n  esc:environments: [a]\n",
        {"a": "values:\n  pulumiConfig: {x: 1}\n  environmentVariables: {ONLY_A: x}\n", "bad": "values: {a: ${nope}}\n"},
    )
    esc_pulumi.load("dev", root)
    with pytest.raises(EscError):
        esc_pulumi.load("dev", root, environments=["bad"])
    assert runtime_config()[0]["myproj:x"] == "1" and os.environ["ONLY_A"] == "x"


@pytest.mark.parametrize("argument", ["backend", "stack", "organization", "project_dir"])
def test_wrong_argument_types_are_named(project, argument):
    from esc_pulumi.errors import ConfigurationError

    root = project("config:\n  esc:environments: [a]\n", {"a": "values: {}\n"})
    kwargs = {"stack": "dev", "project_dir": root, argument: 123}
    with pytest.raises(ConfigurationError, match=rf"load\({argument}=\.\.\.\): expected .*, not int"):
        esc_pulumi.load(**kwargs)


TYPED_PROJECT = (
    "name: myproj\nruntime: python\nconfig:\n"
    "  replicas: {type: integer}\n"
    "  dbPassword: {type: string, secret: true}\n"
)


def test_load_validates_typed_declarations_after_the_merge(project):
    from esc_pulumi.errors import ConfigurationError

    envs = {"a": "values:\n  pulumiConfig: {replicas: 3, dbPassword: {fn::secret: pw}}\n"}
    stack = "config:\n  esc:backend: file://envs\n  esc:environments: [a]\n"
    root = project(stack, envs, project_yaml=TYPED_PROJECT)
    result = esc_pulumi.load("dev", root)  # ESC supplies both, typed and secret: valid
    assert result.config["myproj:replicas"] == "3"


@pytest.mark.parametrize(
    "pulumi_config, message",
    [
        ("{dbPassword: {fn::secret: pw}}", "is missing configuration value 'replicas'"),
        ("{replicas: three, dbPassword: {fn::secret: pw}}", "configuration key 'replicas' must be of type 'integer'"),
        ("{replicas: 3, dbPassword: plain-pw}", "configuration key 'dbPassword' must be encrypted as it's secret"),
    ],
)
def test_load_refuses_config_the_cli_would_refuse(project, pulumi_config, message):
    from esc_pulumi.errors import ConfigurationError

    envs = {"a": f"values:\n  pulumiConfig: {pulumi_config}\n"}
    root = project("config:\n  esc:backend: file://envs\n  esc:environments: [a]\n", envs, project_yaml=TYPED_PROJECT)
    with pytest.raises(ConfigurationError) as e:
        esc_pulumi.load("dev", root)
    assert message in str(e.value) and "validate_config=False" in str(e.value)
    assert "plain-pw" not in str(e.value)
    assert runtime_config() == ({}, set())
    assert esc_pulumi.load("dev", root, validate_config=False).applied


@pytest.mark.parametrize("org", ["../etc", "a/b", "-x"])
def test_organization_names_are_checked_before_use(project, monkeypatch, org):
    from esc_pulumi.errors import ConfigurationError

    root = project("config:\n  esc:environments: [a]\n  esc:backend: http://127.0.0.1:1\n", {"a": "values: {}\n"})
    monkeypatch.setenv("ESC_PULUMI_ORGANIZATION", org)
    with pytest.raises(ConfigurationError, match="ESC_PULUMI_ORGANIZATION: invalid organization name"):
        esc_pulumi.load("dev", root)
