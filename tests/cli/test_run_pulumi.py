"""``esc-pulumi run -- pulumi up``: the config file handed to the Pulumi CLI, checked against a
stand-in ``pulumi`` (``fake_pulumi.py``) that records what it was given and decrypts it."""
from __future__ import annotations

import base64
import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from esc_pulumi.cli.run import parse_pulumi_command
from esc_pulumi.secrets.passphrase import PassphraseCrypter
from esc_pulumi.workspace.plan import APPLIED_VAR, applied_marker, make_plan
from esc_pulumi.workspace.project import full_key, load_document
from esc_pulumi.workspace.rendering import config_text

from .conftest import SCRIPT, base_environ, run_script, write

FAKE = Path(__file__).with_name("fake_pulumi.py")
# The passphrase manager's test vector (spec: "The passphrase secrets manager").
SALT = "v1:fozI5u6B030=:v1:F+6ZduKKd8G0/V7L:PGMFeIzwobWRKmEAzUdaQHqC5mMRIQ=="
PASSPHRASE = "password"
STACK_SECRET = "stack-only-secret"
MIXED_OWN = "stack-leaf-secret"
ESC_SECRETS = ["s3cr3t-pw", "first secret line", "second secret line", "p@ss<>&", "esc-hidden", "mixed-hidden"]

APP_ENV = """
values:
  pulumiConfig:
    aws:region: eu-west-1
    count: 42
    ratio: 1000000.5
    big: 1e6
    tiny: 1.5e-7
    answer: "yes"
    flag: true
    nothing: null
    obj: {b: [1, 2], a: {x: 1}}
    merged: {fromEsc: 1, both: esc, nested: {e: 1, both: esc}, arr: [1, 2]}
    dbPassword: {fn::secret: s3cr3t-pw}
    multi: {fn::secret: "first secret line\\nsecond secret line\\n"}
    secretObj: {user: admin, pass: {fn::secret: "p@ss<>&"}}
    secretMerge: {fromEsc: {fn::secret: esc-hidden}}
    mixed: {fromEsc: {fn::secret: mixed-hidden}, plain: 1}
    stackWins: from-esc
    stackSecret: from-esc
  environmentVariables:
    AWS_REGION: eu-west-1
    DB_PASSWORD: ${pulumiConfig.dbPassword}
  files:
    KEY_FILE: key-data
"""


@pytest.fixture(scope="module")
def vector_crypter() -> PassphraseCrypter:
    return PassphraseCrypter.from_salt_state(SALT, PASSPHRASE, where="Pulumi.dev.yaml")


@pytest.fixture
def fake_pulumi(tmp_path: Path) -> Path:
    """A ``pulumi`` launcher for fake_pulumi.py in its own bin folder; returns the folder."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    launcher = bin_dir / "pulumi"
    launcher.write_text(
        f"#!{sys.executable}\nimport runpy\nrunpy.run_path({str(FAKE)!r}, run_name='__main__')\n",
        encoding="utf-8",
    )
    launcher.chmod(0o755)
    return bin_dir


@pytest.fixture
def envs(tmp_path: Path) -> Path:
    envs = tmp_path / "envs"
    write(envs / "myproj" / "app.yaml", APP_ENV)
    write(envs / "myproj" / "bad.yaml", "values:\n  a: ${nope}\n")
    return envs


def stack_text(crypter: PassphraseCrypter, *, head: str | None = None, environment: str = "[myproj/app]") -> str:
    head = f"encryptionsalt: {SALT}\n" if head is None else head
    return (
        head
        + f"environment: {environment}\n"
        + "config:\n"
        "  esc:backend: file://../envs\n"
        "  esc:organization: acme\n"
        "  myproj:stackWins: from-stack\n"
        "  myproj:answer2: yes\n"
        "  myproj:sci: 1e6\n"
        "  myproj:oct: 0o17\n"
        "  myproj:hex: 0x10\n"
        '  myproj:text: "quoted \\"text\\""\n'
        "  myproj:block: |\n"
        "    line a\n"
        "    line b\n"
        "  myproj:merged:\n"
        "    both: stack\n"
        "    onlyStack: true\n"
        "    nested:\n"
        "      both: stack\n"
        "    arr: [9]\n"
        "  myproj:stackSecret:\n"
        f"    secure: {crypter.encrypt(STACK_SECRET)}\n"
        "  myproj:secretMerge:\n"
        "    own: stack\n"
        "  myproj:mixed:\n"
        "    own:\n"
        f"      secure: {crypter.encrypt(MIXED_OWN)}\n"
        "  aws:profile: dev\n"
    )


@pytest.fixture
def project(tmp_path: Path, envs: Path, vector_crypter: PassphraseCrypter) -> Path:
    proj = tmp_path / "proj"
    write(proj / "Pulumi.yaml", "name: myproj\nruntime: python\nconfig:\n  fallback: dflt\n  count: 1\n")
    write(proj / "Pulumi.dev.yaml", stack_text(vector_crypter))
    return proj


class Harness:
    """Runs the esc-pulumi console script with the stand-in pulumi first on PATH."""

    def __init__(self, tmp_path: Path, bin_dir: Path) -> None:
        self.log = tmp_path / "pulumi-log.jsonl"
        self.tmp = tmp_path / "tmp"
        self.tmp.mkdir(exist_ok=True)
        self.env = {
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "FAKE_PULUMI_LOG": str(self.log),
            "FAKE_PULUMI_ENV": "AWS_REGION,DB_PASSWORD,KEY_FILE",
            "TMPDIR": str(self.tmp),
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
        }

    def run(self, args: list[str], cwd: Path, **env: str):
        return run_script(args, cwd=cwd, env={**self.env, **env})

    def entries(self) -> list[dict]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text(encoding="utf-8").splitlines()]

    def calls(self) -> list[dict]:
        return [e for e in self.entries() if "argv" in e]

    def leftovers(self) -> list[str]:
        return sorted(str(p.relative_to(self.tmp)) for p in self.tmp.rglob("*"))


@pytest.fixture
def harness(tmp_path: Path, fake_pulumi: Path) -> Harness:
    return Harness(tmp_path, fake_pulumi)


def test_up_gets_the_stack_file_with_esc_config_merged(harness, project, vector_crypter):
    r = harness.run(["run", "--", "pulumi", "up", "--stack", "dev", "--yes"], cwd=project)
    assert r.code == 0, r.err
    (call,) = harness.calls()
    argv = call["argv"]
    cf = call["config_file"]
    assert argv == ["up", "--config-file", cf["path"], "--stack", "dev", "--yes"]
    assert cf["exists"] and cf["mode"] == 0o600
    assert not Path(cf["path"]).exists()  # removed at exit
    assert harness.leftovers() == []

    doc = cf["document"]
    assert "environment" not in doc
    assert doc["encryptionsalt"] == SALT
    config = doc["config"]
    # Typed as the values were: yaml.v3 reads back ints as ints, floats as floats, strings as strings.
    assert config["myproj:count"] == 42 and type(config["myproj:count"]) is int
    assert config["myproj:ratio"] == 1000000.5
    assert config["myproj:big"] == 1e6 and type(config["myproj:big"]) is float
    assert config["myproj:answer"] == "yes" and config["myproj:flag"] is True
    assert config["myproj:nothing"] is None
    assert config["myproj:obj"] == {"b": [1, 2], "a": {"x": 1}}
    assert config["esc:backend"] == "file://../envs"

    delivered = cf["delivered"]
    assert delivered["aws:region"] == "eu-west-1"
    assert delivered["myproj:count"] == "42"  # ESC beats the project default (1)
    assert delivered["myproj:big"] == "1000000"
    assert delivered["myproj:tiny"] == "1.5e-7"
    assert delivered["myproj:obj"] == '{"a":{"x":1},"b":[1,2]}'
    # Deep merge: the stack wins per key, arrays replaced.
    assert delivered["myproj:merged"] == (
        '{"arr":[9],"both":"stack","fromEsc":1,"nested":{"both":"stack","e":1},"onlyStack":true}'
    )
    assert delivered["myproj:stackWins"] == "from-stack"
    # Secrets: one secure: value of the whole config text, which decrypts with the passphrase rule.
    assert config["myproj:dbPassword"].keys() == {"secure"}
    assert delivered["myproj:dbPassword"] == "s3cr3t-pw"
    assert delivered["myproj:multi"] == "first secret line\nsecond secret line\n"
    assert delivered["myproj:secretObj"] == '{"pass":"p@ss\\u003c\\u003e\\u0026","user":"admin"}'
    assert config["myproj:secretMerge"].keys() == {"secure"}
    assert delivered["myproj:secretMerge"] == '{"fromEsc":"esc-hidden","own":"stack"}'
    # A stack object with its own secure leaves: they stay; ESC's secret joins as a leaf.
    assert delivered["myproj:mixed"] == f'{{"fromEsc":"mixed-hidden","own":"{MIXED_OWN}","plain":1}}'
    assert set(cf["secret_keys"]) == {
        "myproj:dbPassword", "myproj:multi", "myproj:secretObj", "myproj:secretMerge",
        "myproj:mixed", "myproj:stackSecret",
    }
    for secret in ESC_SECRETS + [STACK_SECRET, MIXED_OWN]:
        assert secret not in cf["text"]

    # The stack's own values are untouched: same config text as from the stack file itself,
    # and its ciphertexts are the very same strings.
    original = load_document(project / "Pulumi.dev.yaml")
    for key, value in original["config"].items():
        full = full_key(key, "myproj", where="test")
        if isinstance(value, dict) and "secure" in str(value):
            continue
        if full in ("myproj:merged", "myproj:secretMerge"):
            continue
        assert delivered[full] == config_text(value), full
    assert config["myproj:stackSecret"] == original["config"]["myproj:stackSecret"]
    assert config["myproj:mixed"]["own"] == original["config"]["myproj:mixed"]["own"]
    assert delivered["myproj:stackSecret"] == STACK_SECRET
    assert delivered["myproj:answer2"] == "yes"
    assert (delivered["myproj:sci"], delivered["myproj:oct"], delivered["myproj:hex"]) == ("1000000", "15", "16")
    assert delivered["myproj:block"] == "line a\nline b\n"
    assert delivered["myproj:text"] == 'quoted "text"'
    assert "myproj:fallback" not in delivered  # project defaults stay the CLI's business
    # The stack file itself is unchanged.
    assert (project / "Pulumi.dev.yaml").read_text(encoding="utf-8").startswith(f"encryptionsalt: {SALT}\n")


def test_child_environment_and_applied_marker(harness, project):
    r = harness.run(["run", "--", "pulumi", "preview", "--stack", "dev"], cwd=project)
    assert r.code == 0, r.err
    (call,) = harness.calls()
    env = call["env"]
    assert env["AWS_REGION"] == "eu-west-1" and env["DB_PASSWORD"] == "s3cr3t-pw"
    assert env["KEY_FILE"] and not Path(env["KEY_FILE"]).exists()
    plan = make_plan("dev", project, environ=base_environ())
    assert env[APPLIED_VAR] == applied_marker(plan)
    assert call["plan_applied"] is True  # a load() in the program would open nothing


def test_passphrase_from_the_environments_own_variables(harness, project, envs):
    write(envs / "myproj" / "pp.yaml", "imports: [myproj/app]\nvalues:\n  environmentVariables:\n"
          "    PULUMI_CONFIG_PASSPHRASE: {fn::secret: password}\n")
    env = {k: v for k, v in harness.env.items() if k != "PULUMI_CONFIG_PASSPHRASE"}
    r = run_script(["run", "myproj/pp", "--", "pulumi", "up", "-s", "dev"], cwd=project, env=env)
    assert r.code == 0, r.err
    (call,) = harness.calls()
    assert call["config_file"]["delivered"]["myproj:dbPassword"] == "s3cr3t-pw"
    assert call["plan_applied"] is False  # the program's own load() would open the stack's list


def test_json_project_still_gets_a_yaml_config_file(harness, tmp_path, envs):
    proj = tmp_path / "jproj"
    write(proj / "Pulumi.json", '{"name": "myproj", "runtime": "python"}')
    write(proj / "Pulumi.dev.json",
          '{"config": {"esc:backend": "file://../envs", "esc:environments": ["myproj/app"], "myproj:j": 1.5}}')
    r = harness.run(["run", "--", "pulumi", "up", "-s", "dev"], cwd=proj)
    assert r.code == 0, r.err
    (call,) = [c for c in harness.calls() if "config_file" in c]  # no salt: secrets by the CLI
    cf = call["config_file"]
    assert cf["path"].endswith("Pulumi.dev.yaml")
    assert cf["delivered"]["myproj:j"] == "1.5" and cf["delivered"]["myproj:count"] == "42"
    assert call["plan_applied"] is True


def test_global_flags_stack_from_environment(harness, project, tmp_path):
    # Started above the project: `pulumi --cwd proj up`; the stack from PULUMI_STACK.
    r = harness.run(["run", "--", "pulumi", "--cwd", "proj", "up", "-y"], cwd=tmp_path, PULUMI_STACK="dev")
    assert r.code == 0, r.err
    (call,) = harness.calls()
    path = call["config_file"]["path"]
    assert call["argv"] == ["--cwd", "proj", "up", "--config-file", path, "--stack", "dev", "-y"]
    assert call["config_file"]["delivered"]["aws:region"] == "eu-west-1"


def test_selected_stack_is_used(harness, project):
    home = project / ".pulumi-home"  # run_script's PULUMI_HOME
    project_file = project / "Pulumi.yaml"
    import hashlib

    digest = hashlib.sha1(str(project_file.resolve()).encode()).hexdigest()
    write(home / "workspaces" / f"myproj-{digest}-workspace.json", '{"stack": "organization/myproj/dev"}')
    from esc_pulumi.workspace.project import read_project, selected_stack

    assert selected_stack(read_project(project_file), {"PULUMI_HOME": str(home)}) == "organization/myproj/dev"
    r = harness.run(["run", "--", "pulumi", "refresh"], cwd=project)
    assert r.code == 0, r.err
    (call,) = harness.calls()
    assert call["argv"][-2:] == ["--stack", "organization/myproj/dev"]
    plan = make_plan("dev", project, environ=base_environ())
    assert call["env"][APPLIED_VAR] == applied_marker(plan)


def test_stack_conflict_and_refused_flags(harness, project):
    r = harness.run(["run", "--stack", "prod", "--", "pulumi", "up", "--stack", "dev"], cwd=project)
    assert r.code == 1 and "name one stack" in r.err
    r = harness.run(["run", "--", "pulumi", "up", "--stack", "dev", "--config-file", "x.yaml"], cwd=project)
    assert r.code == 1 and "--config-file" in r.err and r.err.count("\n") == 1
    r = harness.run(["run", "--", "pulumi", "up", "--stack=dev", "-c", "a=b"], cwd=project)
    assert r.code == 1 and "pulumi config set" in r.err
    r = harness.run(["run", "--", "pulumi", "up"], cwd=project)
    assert r.code == 1 and "no stack selected" in r.err
    assert harness.calls() == []


def test_wrong_passphrase_is_a_clear_error_and_nothing_is_written(harness, project):
    r = harness.run(["run", "--", "pulumi", "up", "-s", "dev"], cwd=project, PULUMI_CONFIG_PASSPHRASE="password123")
    assert r.code == 1
    assert "incorrect passphrase" in r.err and "Pulumi.dev.yaml" in r.err
    assert "PULUMI_CONFIG_PASSPHRASE" in r.err and r.err.count("\n") == 1
    for secret in ESC_SECRETS:
        assert secret not in r.err
    assert harness.calls() == [] and harness.leftovers() == []


def test_missing_passphrase_and_passphrase_file(harness, project, tmp_path):
    env = {k: v for k, v in harness.env.items() if k != "PULUMI_CONFIG_PASSPHRASE"}
    r = run_script(["run", "--", "pulumi", "up", "-s", "dev"], cwd=project, env=env)
    assert r.code == 1 and "PULUMI_CONFIG_PASSPHRASE_FILE" in r.err and harness.calls() == []
    (tmp_path / "pp").write_text(PASSPHRASE + "\n", encoding="utf-8")
    r = run_script(["run", "--", "pulumi", "up", "-s", "dev"], cwd=project,
                   env={**env, "PULUMI_CONFIG_PASSPHRASE_FILE": str(tmp_path / "pp")})
    assert r.code == 0, r.err
    (call,) = harness.calls()
    assert call["config_file"]["delivered"]["myproj:dbPassword"] == "s3cr3t-pw"


def test_other_secrets_provider_encrypts_through_the_cli(harness, project):
    write(
        project / "Pulumi.kms.yaml",
        """
        secretsprovider: awskms://alias/my-key?region=eu-west-1
        encryptedkey: AQICAHh0ZXN0LWtleQ==
        environment: [myproj/app]
        config:
          esc:backend: file://../envs
          myproj:stackWins: from-stack
          myproj:kept:
            secure: fake:c3RhY2s=
        """,
    )
    r = harness.run(["run", "--", "pulumi", "destroy", "--stack", "kms"], cwd=project)
    assert r.code == 0, r.err
    calls = harness.calls()
    sets = [c for c in calls if c["argv"][:3] == ["--non-interactive", "config", "set"]]
    (up,) = [c for c in calls if "config_file" in c]
    # Every secret went through `pulumi config set --secret`, its value on standard input only.
    stdins = [e["stdin"] for e in harness.entries() if "stdin" in e]
    assert len(sets) == len(stdins) == 5
    assert "s3cr3t-pw" in stdins and "first secret line\nsecond secret line\n" in stdins
    for c in sets:
        assert "--secret" in c["argv"] and c["argv"][c["argv"].index("--stack") + 1] == "kms"
        for secret in ESC_SECRETS:
            assert all(secret not in a for a in c["argv"])
    cf = up["config_file"]
    assert cf["document"]["secretsprovider"] == "awskms://alias/my-key?region=eu-west-1"
    assert cf["document"]["encryptedkey"] == "AQICAHh0ZXN0LWtleQ=="
    assert "encryptionsalt" not in cf["document"]
    assert cf["document"]["config"]["myproj:kept"] == {"secure": "fake:c3RhY2s="}
    assert cf["delivered"]["myproj:dbPassword"] == "s3cr3t-pw"
    assert cf["delivered"]["myproj:multi"] == "first secret line\nsecond secret line\n"
    assert cf["delivered"]["myproj:kept"] == "stack"
    assert cf["delivered"]["myproj:stackWins"] == "from-stack"
    assert harness.leftovers() == []


def test_a_stack_without_a_secrets_manager_gets_the_clis(harness, project):
    write(
        project / "Pulumi.fresh.yaml",
        "environment: [myproj/app]\nconfig:\n  esc:backend: file://../envs\n",
    )
    r = harness.run(["run", "--", "pulumi", "up", "--stack", "fresh"], cwd=project)
    assert r.code == 0, r.err
    (up,) = [c for c in harness.calls() if "config_file" in c]
    # The CLI set one up in its scratch file; the ciphertexts need it beside them.
    assert up["config_file"]["document"]["encryptionsalt"] == "fake-salt-from-cli"
    assert up["config_file"]["delivered"]["myproj:dbPassword"] == "s3cr3t-pw"


def test_cli_encryption_failure_names_the_key_not_the_value(harness, project):
    write(
        project / "Pulumi.kms.yaml",
        "secretsprovider: awskms://alias/k\nenvironment: [myproj/app]\nconfig:\n  esc:backend: file://../envs\n",
    )
    r = harness.run(["run", "--", "pulumi", "up", "--stack", "kms"], cwd=project, FAKE_PULUMI_FAIL_SET="1")
    assert r.code == 1
    assert "cannot encrypt config key 'myproj:" in r.err and "could not reach the key vault" in r.err
    for secret in ESC_SECRETS:
        assert secret not in r.err
    assert [c for c in harness.calls() if "config_file" in c] == []
    assert harness.leftovers() == []


def test_other_commands_are_run_as_before(harness, project):
    r = harness.run(["run", "--stack", "dev", "--", "pulumi", "stack", "ls"], cwd=project)
    assert r.code == 0, r.err
    (call,) = harness.calls()
    assert call["argv"] == ["stack", "ls"]
    assert call["env"]["AWS_REGION"] == "eu-west-1" and call["env"][APPLIED_VAR] is None
    child = "import os, sys; print(sys.argv[1:], os.environ.get('ESC_PULUMI_APPLIED'), os.environ['AWS_REGION'])"
    r = harness.run(["run", "--stack", "dev", "--", sys.executable, "-c", child, "up"], cwd=project)
    assert (r.code, r.out) == (0, "['up'] None eu-west-1\n"), r.err


def test_definition_errors_stop_before_pulumi(harness, project):
    r = harness.run(["run", "myproj/bad", "--", "pulumi", "up", "--stack", "dev"], cwd=project)
    assert r.code == 1 and "bad.yaml" in r.err
    assert harness.calls() == [] and harness.leftovers() == []


def test_output_masks_every_secret_also_across_lines(harness, project):
    r = harness.run(["run", "--", "pulumi", "up", "--stack", "dev"], cwd=project, FAKE_PULUMI_PRINT="1")
    assert r.code == 0, r.err
    for secret in ESC_SECRETS + ["esc-hidden"]:
        assert secret not in r.out
    lines = r.out.splitlines()
    assert "myproj:dbPassword=[secret]" in lines
    assert "myproj:count=42" in lines and "aws:region=eu-west-1" in lines
    # The multi-line secret printed whole (its trailing newline included): masked as one.
    assert "myproj:multi=[secret]" in lines
    assert "myproj:secretObj=[secret]" in lines


def _controlling_terminal() -> None:  # in the child, before exec: the pty becomes its terminal
    import fcntl
    import termios

    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def test_terminal_is_inherited_and_not_masked_and_ctrl_c_reaches_pulumi(harness, project):
    master, slave = pty.openpty()
    env = base_environ({**harness.env, "FAKE_PULUMI_PRINT": "1", "FAKE_PULUMI_SLEEP": "60"},
                       home=project / ".pulumi-home")
    cmd = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "esc_pulumi.cli"]
    # The wrapper in its own session with the pty as controlling terminal: as in a shell.
    p = subprocess.Popen(cmd + ["run", "--", "pulumi", "up", "--stack", "dev"], cwd=project, env=env,
                         stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                         preexec_fn=_controlling_terminal)
    os.close(slave)
    output = b""
    interrupted = False
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if not interrupted and harness.calls() and b"\"user\":\"admin\"}" in output:  # the last line
                os.write(master, b"\x03")  # Ctrl-C on the terminal
                interrupted = True
            ready, _, _ = select.select([master], [], [], 0.2)
            if not ready:
                if p.poll() is not None:
                    break
                continue
            try:
                piece = os.read(master, 65536)
            except OSError:  # EIO: the terminal's other side is closed
                break
            if not piece:
                break
            output += piece
        code = p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
        os.close(master)
    (call,) = harness.calls()
    assert call["tty"] == [True, True, True]
    assert call["own_process_group"] is False  # the terminal's foreground group: job control works
    # On a terminal the child owns the output: nothing is masked (the documented trade-off).
    assert b"myproj:dbPassword=s3cr3t-pw" in output
    # The terminal's Ctrl-C reached pulumi once (the wrapper does not pass it on a second time).
    assert interrupted and code == 130, output
    assert [e["signal"] for e in harness.entries() if e.get("signal")] == ["SIGINT"]
    assert harness.leftovers() == []


def _start_sleeping_up(harness, project, **popen):
    env = base_environ({**harness.env, "FAKE_PULUMI_SLEEP": "60"}, home=project / ".pulumi-home")
    cmd = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "esc_pulumi.cli"]
    p = subprocess.Popen(cmd + ["run", "--", "pulumi", "up", "--stack", "dev"], cwd=project, env=env,
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)
    deadline = time.monotonic() + 60
    while not harness.calls() and time.monotonic() < deadline and p.poll() is None:
        time.sleep(0.05)
    return p


@pytest.mark.parametrize("signum, to_group", [(signal.SIGTERM, False), (signal.SIGINT, False), (signal.SIGINT, True)])
def test_signals_are_passed_on_once_and_files_are_removed(harness, project, signum, to_group):
    # to_group: the signal goes to the wrapper's whole process group (a CI runner stopping a job).
    # Away from a terminal the child has a group of its own, so it gets the signal once, from the
    # wrapper, not twice (a second SIGINT makes pulumi stop at once, without finishing cleanly).
    p = _start_sleeping_up(harness, project, start_new_session=True)
    try:
        (call,) = harness.calls()
        assert call["own_process_group"] is True
        path = Path(call["config_file"]["path"])
        assert path.exists()
        if to_group:
            os.killpg(p.pid, signum)
        else:
            p.send_signal(signum)
        code = p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
        p.communicate()
    assert code == 128 + signum
    signals = [e for e in harness.entries() if e.get("signal")]
    assert signals == [{"signal": signal.Signals(signum).name, "config_file_exists": True}]
    assert not path.exists() and harness.leftovers() == []


# -- the pulumi command line --------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, sub, stack, cwd",
    [
        (["pulumi", "up"], "up", None, None),
        (["pulumi", "up", "--stack", "dev"], "up", "dev", None),
        (["pulumi", "up", "--stack=org/p/dev"], "up", "org/p/dev", None),
        (["pulumi", "-C", "infra", "preview", "-sdev"], "preview", "dev", "infra"),
        (["pulumi", "--cwd=infra", "-v", "9", "destroy", "-ys", "dev"], "destroy", "dev", "infra"),
        (["pulumi", "--color", "never", "refresh", "-m", "-s", "--yes"], "refresh", None, None),
        (["/usr/local/bin/pulumi", "--non-interactive", "watch", "--", "-s", "x"], "watch", None, None),
        (["pulumi", "stack", "select", "dev"], "stack", None, None),
    ],
)
def test_parse_pulumi_command(argv, sub, stack, cwd):
    c = parse_pulumi_command(argv)
    assert (c.subcommand, c.stack, c.cwd) == (sub, stack, cwd)
    assert argv[c.index] == sub


def test_parse_pulumi_command_flags_and_rewrite():
    assert parse_pulumi_command(["python", "up"]) is None
    assert parse_pulumi_command(["pulumi", "up", "--config-file", "f"]).config_file
    assert parse_pulumi_command(["pulumi", "up", "--config-file=f"]).config_file
    assert parse_pulumi_command(["pulumi", "up", "-c", "a=b"]).config_flag
    assert parse_pulumi_command(["pulumi", "up", "--config", "a=b"]).config_flag
    assert not parse_pulumi_command(["pulumi", "up", "--config-path"]).config_flag
    c = parse_pulumi_command(["pulumi", "--cwd", "x", "up", "--yes"])
    assert c.with_config_file("/t/f.yaml", "dev") == [
        "pulumi", "--cwd", "x", "up", "--config-file", "/t/f.yaml", "--stack", "dev", "--yes"]
    c = parse_pulumi_command(["pulumi", "up", "-s", "dev"])
    assert c.with_config_file("/t/f.yaml", "dev") == ["pulumi", "up", "--config-file", "/t/f.yaml", "-s", "dev"]
