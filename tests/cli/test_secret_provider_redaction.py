"""``esc-pulumi open`` / ``config`` / ``run`` never print a secret provider's output without
``--show-secrets`` (issue 9 §1): references to parts of the output, the whole output and values
derived from it are all ``[secret]``, in every format.

The provider is published through the ``esc_pulumi.providers`` entry-point group (see
``tests/secret_provider.py``), so the real command finds it as it would a third-party one.
Expected outputs are written by hand from the spec (sections 6, 9 and 10).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .. import secret_provider as sp
from .conftest import base_environ, write


@pytest.fixture
def leak_store(tmp_path: Path) -> Path:
    envs = tmp_path / "envs"
    write(envs / "myproj" / "leak.yaml", sp.LEAK_ENV)
    write(
        envs / "myproj" / "importer.yaml",
        """
        imports:
          - myproj/leak
        values:
          ref: ${creds.user}
          part: ${data.nested}
        """,
    )
    return envs


@pytest.fixture
def cli_env(tmp_path: Path, leak_store: Path) -> dict[str, str]:
    prov = sp.install(tmp_path / "providers")
    return {"ESC_PULUMI_BACKEND": f"file://{leak_store}", "PYTHONPATH": sp.pythonpath_with(prov)}


def esc(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m esc_pulumi.cli ARGS`` in a clean environment."""
    return subprocess.run(
        [sys.executable, "-m", "esc_pulumi.cli", *args],
        cwd=tmp_path,
        env=base_environ(env, home=tmp_path / ".pulumi-home"),
        capture_output=True,
        text=True,
        timeout=60,
    )


EXPECTED_JSON = """\
{
  "creds": "[secret]",
  "data": "[secret]",
  "dataItem": "[secret]",
  "deep": "[secret]",
  "environmentVariables": {
    "DATA_TOKEN": "[secret]",
    "DB_PASSWORD": "[secret]",
    "DB_USER": "[secret]",
    "PLAIN_VAR": "plain-visible"
  },
  "field": "[secret]",
  "files": {
    "DEEP_FILE": "[secret]"
  },
  "greeting": "[secret]",
  "pulumiConfig": {
    "dataInner": "[secret]",
    "dbPassword": "[secret]",
    "nested": "[secret]",
    "plainKey": "plain-config"
  },
  "whole": "[secret]"
}
"""

EXPECTED_YAML = """\
creds: '[secret]'
data: '[secret]'
dataItem: '[secret]'
deep: '[secret]'
environmentVariables:
  DATA_TOKEN: '[secret]'
  DB_PASSWORD: '[secret]'
  DB_USER: '[secret]'
  PLAIN_VAR: plain-visible
field: '[secret]'
files:
  DEEP_FILE: '[secret]'
greeting: '[secret]'
pulumiConfig:
  dataInner: '[secret]'
  dbPassword: '[secret]'
  nested: '[secret]'
  plainKey: plain-config
whole: '[secret]'
"""

# Redacted dotenv writes no files: their variables print as [unknown] (section 9).
EXPECTED_DOTENV = """\
DATA_TOKEN="[secret]"
DB_PASSWORD="[secret]"
DB_USER="[secret]"
PLAIN_VAR="plain-visible"
DEEP_FILE="[unknown]"
"""

EXPECTED_STRING = (
    '"creds"="[secret]","data"="[secret]","dataItem"="[secret]","deep"="[secret]",'
    '"environmentVariables"="\\"DATA_TOKEN\\"=\\"[secret]\\",\\"DB_PASSWORD\\"=\\"[secret]\\",'
    '\\"DB_USER\\"=\\"[secret]\\",\\"PLAIN_VAR\\"=\\"plain-visible\\"",'
    '"field"="[secret]","files"="\\"DEEP_FILE\\"=\\"[secret]\\"","greeting"="[secret]",'
    '"pulumiConfig"="\\"dataInner\\"=\\"[secret]\\",\\"dbPassword\\"=\\"[secret]\\",'
    '\\"nested\\"=\\"[secret]\\",\\"plainKey\\"=\\"plain-config\\"","whole"="[secret]"\n'
)


def test_json(tmp_path: Path, cli_env: dict[str, str]) -> None:
    r = esc(tmp_path, cli_env, "open", "myproj/leak", "--format", "json")
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout == EXPECTED_JSON


def test_yaml(tmp_path: Path, cli_env: dict[str, str]) -> None:
    r = esc(tmp_path, cli_env, "open", "myproj/leak", "--format", "yaml")
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout == EXPECTED_YAML


def test_dotenv_and_shell(tmp_path: Path, cli_env: dict[str, str]) -> None:
    r = esc(tmp_path, cli_env, "open", "myproj/leak", "--format", "dotenv")
    assert (r.returncode, r.stderr, r.stdout) == (0, "", EXPECTED_DOTENV)
    r = esc(tmp_path, cli_env, "open", "myproj/leak", "--format", "shell")
    expected = "".join(f"export {line}\n" for line in EXPECTED_DOTENV.splitlines())
    assert (r.returncode, r.stderr, r.stdout) == (0, "", expected)


def test_string(tmp_path: Path, cli_env: dict[str, str]) -> None:
    r = esc(tmp_path, cli_env, "open", "myproj/leak", "--format", "string")
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout == EXPECTED_STRING


def test_detailed(tmp_path: Path, cli_env: dict[str, str]) -> None:
    r = esc(tmp_path, cli_env, "open", "myproj/leak", "--format", "detailed")
    assert (r.returncode, r.stderr) == (0, "")
    assert sp.leaks(r.stdout) == []
    model = json.loads(r.stdout)
    assert set(model) == {"exprs", "properties", "schema", "executionContext"}
    doc = model["properties"]
    for key in ("creds", "data", "field", "whole", "deep", "dataItem", "greeting"):
        assert (doc[key]["value"], doc[key]["secret"]) == ("[secret]", True), key
    assert doc["environmentVariables"]["value"]["DB_USER"]["value"] == "[secret]"
    assert doc["environmentVariables"]["value"]["PLAIN_VAR"]["value"] == "plain-visible"
    assert doc["pulumiConfig"]["value"]["nested"] == {
        "value": "[secret]", "secret": True, "trace": doc["pulumiConfig"]["value"]["nested"]["trace"],
    }


@pytest.mark.parametrize(
    "path",
    ["creds", "creds.password", "creds.nested", "creds.nested.deep[1]", "creds.nested.deep[1].inner",
     "data.nested.list", "whole.user", "field"],
)
@pytest.mark.parametrize("fmt", ["json", "yaml", "string", "detailed"])
def test_paths_into_the_output(tmp_path: Path, cli_env: dict[str, str], path: str, fmt: str) -> None:
    r = esc(tmp_path, cli_env, "open", "myproj/leak", path, "--format", fmt)
    assert (r.returncode, r.stderr) == (0, "")
    assert sp.leaks(r.stdout) == []
    expected = {"json": '"[secret]"\n', "yaml": "'[secret]'\n", "string": "[secret]\n"}
    if fmt == "detailed":
        assert json.loads(r.stdout)["value"] == "[secret]"
    else:
        assert r.stdout == expected[fmt]


def test_importer_references(tmp_path: Path, cli_env: dict[str, str]) -> None:
    r = esc(tmp_path, cli_env, "open", "myproj/importer")
    assert (r.returncode, r.stderr) == (0, "")
    doc = json.loads(r.stdout)
    assert (doc["ref"], doc["part"], doc["creds"]) == ("[secret]", "[secret]", "[secret]")
    for fmt in ("yaml", "dotenv", "shell", "string", "detailed"):
        r = esc(tmp_path, cli_env, "open", "myproj/importer", "--format", fmt)
        assert r.returncode == 0 and sp.leaks(r.stdout + r.stderr) == [], fmt


def test_show_secrets_reveals_so_the_provider_really_ran(tmp_path: Path, cli_env: dict[str, str]) -> None:
    r = esc(tmp_path, cli_env, "open", "myproj/leak", "--show-secrets")
    assert r.returncode == 0
    doc = json.loads(r.stdout)
    assert doc["field"] == "e2e-password-K9X"
    assert doc["deep"] == "e2e-inner-V5"
    assert doc["dataItem"] == "e2e-data-item-W8"
    assert doc["greeting"] == "hi e2e-user-Q7Z"


def test_in_process_main(tmp_path: Path, leak_store: Path, monkeypatch: pytest.MonkeyPatch,
                         capfd: pytest.CaptureFixture[str]) -> None:
    from esc_pulumi.cli.main import main

    prov = sp.install(tmp_path / "providers")
    monkeypatch.syspath_prepend(str(prov))
    monkeypatch.setenv("ESC_PULUMI_BACKEND", f"file://{leak_store}")
    monkeypatch.chdir(tmp_path)
    for fmt in ("json", "yaml", "dotenv", "shell", "string", "detailed"):
        assert main(["open", "myproj/leak", "--format", fmt]) == 0
        out, err = capfd.readouterr()
        assert sp.leaks(out + err) == [], fmt
        assert "[secret]" in out, fmt
    assert main(["open", "myproj/leak", "--format", "json"]) == 0
    assert capfd.readouterr().out == EXPECTED_JSON


@pytest.fixture
def leak_project(tmp_path: Path) -> Path:
    proj = tmp_path / "proj"
    write(proj / "Pulumi.yaml", "name: myproj\nruntime: python\n")
    write(
        proj / "Pulumi.dev.yaml",
        """
        config:
          esc:backend: file://../envs
          esc:environments: [myproj/leak]
        """,
    )
    return proj


def test_config_command(tmp_path: Path, cli_env: dict[str, str], leak_project: Path) -> None:
    env = {k: v for k, v in cli_env.items() if k != "ESC_PULUMI_BACKEND"}
    r = esc(tmp_path, env, "config", "--cwd", str(leak_project), "--stack", "dev", "--json")
    assert (r.returncode, sp.leaks(r.stdout + r.stderr)) == (0, [])
    doc = json.loads(r.stdout)
    source = "environment myproj/leak"
    # The stack file's own esc:* keys are listed too; only the environment's keys matter here.
    doc = {k: v for k, v in doc.items() if v["source"] == source}
    assert doc == {
        "myproj:dataInner": {"secret": True, "source": source},
        "myproj:dbPassword": {"secret": True, "source": source},
        "myproj:nested": {"secret": True, "source": source},
        "myproj:plainKey": {"value": "plain-config", "secret": False, "source": source},
    }
    r = esc(tmp_path, env, "config", "--cwd", str(leak_project), "--stack", "dev")
    assert (r.returncode, sp.leaks(r.stdout + r.stderr)) == (0, [])
    assert r.stdout.count("[secret]") == 3


def test_run_masks_the_output(tmp_path: Path, cli_env: dict[str, str]) -> None:
    script = (
        "import os; print(os.environ['DB_PASSWORD']); print(os.environ['DB_USER']); "
        "print(os.environ['DATA_TOKEN']); print(open(os.environ['DEEP_FILE']).read()); "
        "print(os.environ['PLAIN_VAR'])"
    )
    r = esc(tmp_path, cli_env, "run", "myproj/leak", "--", sys.executable, "-c", script)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "[secret]\n[secret]\n[secret]\n[secret]\nplain-visible\n"
