"""``esc-pulumi config``: the config the program will see, with the source of each key."""
from __future__ import annotations

import json
import re

from esc_pulumi.cli.main import main

from .conftest import run_script


def rows(text: str) -> list[list[str]]:
    return [re.split(r" {2,}", line) for line in text.splitlines()]


EXPECTED_ROWS = [
    ["KEY", "VALUE", "SOURCE"],
    ["aws:region", "eu-central-1", "stack file (overrides the environment)"],
    ["esc:backend", "file://../envs", "stack file"],
    ["esc:environments", '["myproj/app"]', "stack file"],
    ["myproj:dbPassword", "[secret]", "environment myproj/app"],
    ["myproj:fallback", "dflt", "project default"],
    ["myproj:greeting", "hello us-west-2", "environment myproj/app"],
    ["myproj:settings", '{"a":true,"b":[1,2]}', "environment myproj/app"],
    ["myproj:shared", "from-env", "environment myproj/app"],
    ["myproj:stackOnly", "fromstack", "stack file"],
]


def test_table_with_sources_and_masked_secrets(project):
    r = run_script(["config", "--stack", "dev"], cwd=project)
    assert r.code == 0, r.err
    assert rows(r.out) == EXPECTED_ROWS
    # Columns line up: every value starts where the VALUE header does.
    lines = r.out.splitlines()
    col = lines[0].index("VALUE")
    assert all(line[col - 2 : col] == "  " and line[col] != " " for line in lines)
    assert "s3cr3t" not in r.out + r.err


def test_show_secrets(project):
    r = run_script(["config", "--stack", "dev", "--show-secrets"], cwd=project)
    assert ["myproj:dbPassword", "s3cr3t-pw", "environment myproj/app"] in rows(r.out)


def test_json(project):
    r = run_script(["config", "--stack", "dev", "--json"], cwd=project)
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert data["myproj:dbPassword"] == {"secret": True, "source": "environment myproj/app"}
    assert data["aws:region"] == {
        "value": "eu-central-1",
        "secret": False,
        "source": "stack file",
        "overridesEnvironment": True,
    }
    assert data["myproj:fallback"] == {"value": "dflt", "secret": False, "source": "project default"}
    r = run_script(["config", "--stack", "dev", "--json", "--show-secrets"], cwd=project)
    assert json.loads(r.out)["myproj:dbPassword"]["value"] == "s3cr3t-pw"


def test_stack_without_environments(project):
    r = run_script(["config", "--stack", "empty"], cwd=project)
    assert r.code == 0, r.err
    assert rows(r.out) == [
        ["KEY", "VALUE", "SOURCE"],
        ["myproj:fallback", "dflt", "project default"],
        ["myproj:only", "here", "stack file"],
        ["myproj:shared", "from-project", "project default"],
    ]


def test_stack_from_environment_and_cwd_option(project, tmp_path):
    r = run_script(["config", "--cwd", str(project)], cwd=tmp_path, env={"PULUMI_STACK": "dev"})
    assert r.code == 0 and rows(r.out) == EXPECTED_ROWS


def test_errors_are_one_line(project, tmp_path):
    r = run_script(["config"], cwd=project)
    assert r.code == 1 and r.out == ""
    assert r.err.startswith("esc-pulumi: no stack selected") and "--stack" in r.err and r.err.count("\n") == 1
    r = run_script(["config", "--stack", "nosuch"], cwd=project)
    assert r.code == 1 and "nosuch" in r.err and r.err.count("\n") == 1
    r = run_script(["config", "--stack", "dev"], cwd=tmp_path)
    assert r.code == 1 and "Pulumi.yaml" in r.err and r.err.count("\n") == 1
    assert "Traceback" not in r.err


def test_in_process(project, monkeypatch, capsys):
    monkeypatch.chdir(project)
    monkeypatch.delenv("ESC_PULUMI_BACKEND", raising=False)
    assert main(["config", "-s", "dev"]) == 0
    assert rows(capsys.readouterr().out) == EXPECTED_ROWS


def test_open_the_stack_composition(project):
    r = run_script(["open", "--stack", "dev", "--path", "pulumiConfig.greeting", "-f", "string"], cwd=project)
    assert (r.code, r.out) == (0, "hello us-west-2\n"), r.err
    r = run_script(["open", "--stack", "dev", "--path", "environmentVariables", "-f", "yaml"], cwd=project)
    assert r.out == "AWS_REGION: us-west-2\nDB_PASSWORD: '[secret]'\n"
    r = run_script(["open", "--stack", "dev", "-f", "dotenv"], cwd=project)
    assert r.out == 'AWS_REGION="us-west-2"\nDB_PASSWORD="[secret]"\n'


def test_open_ref_inside_a_project_uses_the_stack_backend(project):
    r = run_script(["open", "myproj/base", "region", "--stack", "dev", "-f", "string"], cwd=project)
    assert (r.code, r.out) == (0, "us-west-2\n"), r.err
    r = run_script(["open", "--stack", "empty"], cwd=project)
    assert r.code == 1 and "no environments" in r.err


def test_errors_give_the_command_s_advice_not_the_library_s(tmp_path):
    import subprocess
    import sys

    (tmp_path / "Pulumi.yaml").write_text("name: myproj\nruntime: python\n")
    out = subprocess.run(
        [sys.executable, "-m", "esc_pulumi.cli", "config", "--stack", "nosuch", "-C", str(tmp_path)],
        capture_output=True, text=True,
    )
    assert out.returncode != 0
    assert "load(" not in out.stderr and "project_dir" not in out.stderr
    assert "environment names" in out.stderr


def test_table_aligns_wide_characters(tmp_path):
    import subprocess
    import sys

    from esc_pulumi.cli.common import display_width

    (tmp_path / "Pulumi.yaml").write_text("name: myproj\nruntime: python\n")
    (tmp_path / "Pulumi.dev.yaml").write_text("config:\n  myproj:名前: 東京都\n  myproj:a: b\n")
    out = subprocess.run(
        [sys.executable, "-m", "esc_pulumi.cli", "config", "--stack", "dev", "-C", str(tmp_path)],
        capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    # The SOURCE column starts at the same display column on every line.
    starts = [display_width(line[: line.index("stack file" if "stack file" in line else "SOURCE")]) for line in lines]
    assert len(set(starts)) == 1, lines


def test_show_secrets_says_who_can_decrypt_secure_values(tmp_path):
    import subprocess
    import sys

    (tmp_path / "Pulumi.yaml").write_text("name: myproj\nruntime: python\n")
    (tmp_path / "Pulumi.dev.yaml").write_text("config:\n  myproj:pw:\n    secure: v1:AAAA:BBBB\n")
    out = subprocess.run(
        [sys.executable, "-m", "esc_pulumi.cli", "config", "--stack", "dev", "-C", str(tmp_path), "--show-secrets"],
        capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stderr
    assert "[secret]" in out.stdout
    assert "only the Pulumi CLI can decrypt" in out.stderr and "PULUMI_CONFIG_PASSPHRASE" in out.stderr
