"""``POST .../rotate`` on the server and ``esc-pulumi env rotate`` against it: the new states are
saved as a new revision (comments kept, secrets encrypted), audited, and opened by the SDK;
nothing is saved when a rotator fails, a path names no call or the definition changed
meanwhile; only editors may rotate; a new state is never in an answer, the log or the store."""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from .. import rotators as rt
from ..cli.conftest import run_script
from .conftest import ORG, Env, run_cli, start_env

DB = rt.DB

FAILING = """\
values:
  good:
    fn::rotate::rt-password:
      inputs: {admin: root}
      state: {gen: 1, password: {fn::secret: before-pw-Z8}}
  bad:
    fn::rotate::rt-fail: {inputs: {}, state: {n: 1}}
"""


@pytest.fixture(scope="module")
def rotating(tmp_path_factory: pytest.TempPathFactory, backend_name: str) -> Iterator[Env]:
    """A server that has the test rotators installed (a distribution on its PYTHONPATH)."""
    root = tmp_path_factory.mktemp("rotate-server")
    prov = rt.install(root / "rotators")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(prov), os.environ.get("PYTHONPATH")])))
        e = start_env(root / "data")
    try:
        yield e
    finally:
        e.server.stop()


def make(env: Env, name: str, text: str) -> None:
    assert env.request("POST", f"/environments/{ORG}", {"project": "rot", "name": name})[0] == 204
    status, _, body = env.request("PATCH", f"/environments/{ORG}/rot/{name}", text)
    assert status == 200, body


def definition(env: Env, name: str) -> tuple[int, str]:
    status, headers, text = env.request("GET", f"/environments/{ORG}/rot/{name}")
    assert status == 200
    return int({k.lower(): v for k, v in headers.items()}["pulumi-esc-revision"]), text


def audit(env: Env, name: str) -> list[dict]:
    out = run_cli("serve", "audit", "--data", str(env.server.data), "--json", "--env", f"rot/{name}").stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()] if not out.lstrip().startswith("[") \
        else json.loads(out)


def leaked(text: str) -> bool:
    return "rotated-pw-" in text or "rotated-token-" in text


def test_rotate_saves_a_new_revision_with_the_new_states(rotating: Env, unique: str) -> None:
    name = f"db{unique}"
    make(rotating, name, DB)
    status, headers, body = rotating.request("POST", f"/environments/{ORG}/rot/{name}/rotate", role="editor")
    assert status == 200, body
    # Revision 1 is the empty environment as created, 2 the definition.
    assert body["preRotationRevision"] == 2 and body["postRotationRevision"] == 3
    assert body["rotated"] == ["db", "token"]
    assert {k.lower(): v for k, v in headers.items()}["pulumi-esc-revision"] == "3"
    assert not leaked(json.dumps(body))

    number, stored = definition(rotating, name)
    assert number == 3
    # The layout and comments stay; the new secrets are stored encrypted like every other.
    assert "# Database credentials (keep this comment)" in stored and "gen: 2   # generation" in stored
    assert "# the managing login" in stored
    assert not leaked(stored) and "first-pw-J2K" not in stored
    assert stored.count("ciphertext") >= 2

    client = rotating.client("opener")
    _, values, _ = client.open_and_read_environment(ORG, "rot", name)
    assert values["db"]["password"] == rt.new_password(2)
    assert values["url"] == f"postgres://{rt.new_password(2)}@db.example.com"
    assert values["token"]["token"] == "rotated-token-1-K4W"

    entries = [(e["action"], e["actor"], e["detail"]) for e in audit(rotating, name)]
    assert ("environment.rotate", "editor-user", "revision 2 -> 3: db, token") in entries


def test_rotate_only_the_selected_paths(rotating: Env, unique: str) -> None:
    name = f"sel{unique}"
    make(rotating, name, DB)
    status, _, body = rotating.request("POST", f"/environments/{ORG}/rot/{name}/rotate", {"paths": ["db"]})
    assert (status, body["rotated"]) == (200, ["db"]), body
    _, stored = definition(rotating, name)
    assert "gen: 2" in stored and "fn::rotate::rt-secret: {inputs: {}}" in stored  # token untouched


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"paths": ["nowhere"]}, "has no fn::rotate at 'nowhere'; its calls: db, token"),
        ({"paths": "db"}, "'paths' must be a list of property paths (strings)"),
        ({"paths": ["db..x"]}, "invalid rotate path 'db..x'"),
    ],
)
def test_bad_paths_save_nothing(rotating: Env, unique: str, body: dict, message: str) -> None:
    name = f"bad{unique}"
    make(rotating, name, DB)
    status, _, answer = rotating.request("POST", f"/environments/{ORG}/rot/{name}/rotate", body)
    assert status == 400, answer
    assert message in json.dumps(answer)
    assert definition(rotating, name)[0] == 2


def test_a_failing_rotator_saves_nothing_and_is_audited(rotating: Env, unique: str) -> None:
    name = f"fail{unique}"
    make(rotating, name, FAILING)
    status, _, body = rotating.request("POST", f"/environments/{ORG}/rot/{name}/rotate")
    assert status == 400, body
    assert body["message"] == "rotation failed; nothing was saved"
    summaries = [d["summary"] for d in body["diagnostics"]]
    assert any("the admin API refused the rotation" in s for s in summaries), summaries
    assert not leaked(json.dumps(body))
    number, stored = definition(rotating, name)
    assert number == 2 and "gen: 1" in stored
    failed = [e for e in audit(rotating, name) if e["action"] == "environment.rotate.failed"]
    assert failed and "rotators ran for good" in failed[0]["detail"], failed


def test_a_definition_without_rotate_and_a_missing_environment(rotating: Env, unique: str) -> None:
    name = f"plain{unique}"
    make(rotating, name, "values:\n  a: 1\n")
    status, _, body = rotating.request("POST", f"/environments/{ORG}/rot/{name}/rotate")
    assert status == 400 and "has no fn::rotate: nothing to rotate" in json.dumps(body)
    status, _, body = rotating.request("POST", f"/environments/{ORG}/rot/missing{unique}/rotate")
    assert status == 404, body


def test_only_editors_rotate(rotating: Env, unique: str) -> None:
    name = f"role{unique}"
    make(rotating, name, DB)
    for role in ("reader", "opener"):
        status, _, _ = rotating.request("POST", f"/environments/{ORG}/rot/{name}/rotate", role=role)
        assert status == 403, role
    status, _, _ = rotating.request("POST", f"/environments/{ORG}/rot/{name}/rotate", token=rotating.other_admin)
    assert status in (403, 404)
    assert definition(rotating, name)[0] == 2


def test_env_rotate_command_against_the_server(rotating: Env, unique: str, tmp_path: Path) -> None:
    name = f"cli{unique}"
    make(rotating, name, DB)
    env = {"ESC_PULUMI_BACKEND": rotating.server.url, "ESC_PULUMI_ORGANIZATION": ORG,
           "PULUMI_ACCESS_TOKEN": rotating.tokens["editor"]}
    r = run_script(["env", "rotate", f"rot/{name}", "db"], cwd=tmp_path, env=env)
    assert (r.code, r.out) == (0, ""), r.err
    assert r.err == f"rot/{name}: rotated db (revision 2 -> 3)\n"
    r = run_script(["env", "rotate", f"rot/{name}", "nowhere"], cwd=tmp_path, env=env)
    assert r.code == 1 and "has no fn::rotate at 'nowhere'" in r.err, r.err
    r = run_script(["env", "rotate", f"rot/{name}"], cwd=tmp_path,
                   env={**env, "PULUMI_ACCESS_TOKEN": rotating.tokens["opener"]})
    assert r.code != 0 and "may not rotate environments" in r.err, r.err
    assert definition(rotating, name)[0] == 3


def test_no_new_state_in_the_log_or_the_store(rotating: Env, unique: str) -> None:
    name = f"leak{unique}"
    make(rotating, name, DB)
    assert rotating.request("POST", f"/environments/{ORG}/rot/{name}/rotate")[0] == 200
    for f in rotating.server.data.rglob("*"):
        if f.is_file():
            assert not leaked(f.read_bytes().decode("latin-1")), f


def test_a_definition_changed_while_rotating_is_not_overwritten(rotating: Env, unique: str, tmp_path: Path) -> None:
    name = f"race{unique}"
    flag = tmp_path / "go"
    make(rotating, name, f"values:\n  s:\n    fn::rotate::rt-slow: {{inputs: {{flag: {flag}}}, state: {{n: 1}}}}\n")
    answer: list = []
    t = threading.Thread(target=lambda: answer.append(
        rotating.request("POST", f"/environments/{ORG}/rot/{name}/rotate")))
    t.start()
    deadline = time.monotonic() + 30
    while not Path(str(flag) + ".started").exists():  # the rotator is running
        assert time.monotonic() < deadline, "the rotator never started"
        time.sleep(0.05)
    edited = "values:\n  s: edited meanwhile\n"
    assert rotating.request("PATCH", f"/environments/{ORG}/rot/{name}", edited)[0] == 200
    flag.touch()
    t.join(60)
    status, _, body = answer[0]
    assert status == 409, body
    assert "changed while rotating" in body["message"] and "rotate again" in body["message"]
    number, stored = definition(rotating, name)
    assert (number, stored) == (3, edited)  # the edit stays; the rotation saved nothing
    failed = [e for e in audit(rotating, name) if e["action"] == "environment.rotate.failed"]
    assert failed and "changed while rotating" in failed[0]["detail"]
