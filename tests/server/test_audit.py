"""The audit log (security review §3): an acknowledged open is on disk, an open names every
environment it revealed, denied requests are there too, and ``serve audit`` filters and limits."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from .conftest import ORG, Env, run_cli, start_env


def audit(data: Path, *args: str) -> list[dict]:
    out = run_cli("serve", "audit", "--data", str(data), "--json", *args).stdout
    return [json.loads(line) for line in out.splitlines()]


def make(env: Env, project: str, name: str, text: str) -> None:
    assert env.request("POST", f"/environments/{ORG}", {"project": project, "name": name})[0] == 204
    status, _, body = env.request("PATCH", f"/environments/{ORG}/{project}/{name}", text)
    assert status == 200, body


def test_every_acknowledged_open_survives_a_sigkill(tmp_path: Path) -> None:
    env = start_env(tmp_path / "data")
    try:
        make(env, "dur", "opened", "values:\n  pw: {fn::secret: survive-me}\n")
        acknowledged = [0]
        lock = threading.Lock()

        def opener(n: int) -> None:
            for _ in range(n):
                status, _, body = env.request("POST", f"/environments/{ORG}/dur/opened/open", role="opener")
                assert status == 200, body
                with lock:
                    acknowledged[0] += 1

        # Concurrent opens, so that the group commit batches them; then one more on its own.
        threads = [threading.Thread(target=opener, args=(5,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        opener(1)
    finally:
        env.server.kill()  # SIGKILL right after the last acknowledgement: no flush at exit
    assert acknowledged[0] == 21
    opens = audit(env.server.data, "--action", "environment.open", "--env", "dur/opened")
    assert len(opens) == 21
    assert {(e["actor"], e["detail"]) for e in opens} == {("opener-user", "revision 2")}


def test_an_open_names_every_environment_of_its_import_closure(env: Env, unique: str) -> None:
    base, mid, top = f"base-{unique}", f"mid-{unique}", f"top-{unique}"
    make(env, "clo", base, "values:\n  pw: {fn::secret: deep-secret}\n")
    status, _, body = env.request("PATCH", f"/environments/{ORG}/clo/{base}", "values:\n  pw: {fn::secret: deep-2}\n")
    assert status == 200, body  # revision 3
    make(env, "clo", mid, f"imports:\n  - clo/{base}\nvalues:\n  m: 1\n")
    make(env, "clo", top, f"imports:\n  - clo/{mid}\n  - clo/{base}@2\nvalues:\n  t: 1\n")
    assert env.request("POST", f"/environments/{ORG}/clo/{top}/open", role="opener")[0] == 200
    status, _, body = env.request("POST", f"/environments/{ORG}/yaml/open", f"imports: [clo/{base}]\n", role="opener")
    assert status == 200, body

    def opens(name: str) -> list[tuple[str, str]]:
        return [(e["actor"], e["detail"]) for e in audit(env.server.data, "--env", f"clo/{name}",
                                                          "--action", "environment.open")]

    assert opens(top) == [("opener-user", "revision 2")]
    assert opens(mid) == [("opener-user", f"revision 2, imported by clo/{top}")]
    # Both revisions of the base that the top one read (latest through mid, @2 directly), and
    # the anonymous definition's import.
    assert opens(base) == [
        ("opener-user", f"revision 3, imported by clo/{top}"),
        ("opener-user", f"revision 2, imported by clo/{top}"),
        ("opener-user", "revision 3, imported by <yaml>"),
    ]
    anonymous = [e for e in audit(env.server.data, "--action", "environment.open", "--actor", "opener-user")
                 if e["target"] == "<yaml>"]
    assert anonymous[-1]["detail"] == "anonymous definition, 1 environment imported"


def test_denied_requests_are_audited_without_the_token(env: Env, unique: str) -> None:
    name = f"denied-{unique}"
    make(env, "den", name, "values: {a: 1}\n")
    path = f"/environments/{ORG}/den/{name}"
    wrong = "escp_this-is-not-a-token-" + unique
    assert env.request("POST", f"{path}/open", role=None)[0] == 401
    assert env.request("POST", f"{path}/open", token=wrong)[0] == 401
    assert env.request("POST", f"{path}/open", role="reader")[0] == 403
    assert env.request("GET", path, token=env.other_admin)[0] == 403
    # Denied entries are written in the background: wait for them (bounded).
    deadline = time.monotonic() + 20
    while True:
        denied = audit(env.server.data, "--action", "access.denied", "--env", f"den/{name}")
        if len(denied) >= 4 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert [(e["actor"], e["detail"].split(" (")[0]) for e in denied] == [
        ("anonymous", "401 open: no token"),
        (denied[1]["actor"], "401 open: unknown token"),
        ("reader-user", "403 open: reader role"),
        ("other-admin", "403 read: token of organization other"),
    ]
    assert denied[1]["actor"].startswith("unknown-token:")
    assert all(e["org"] == ORG for e in denied)
    text = run_cli("serve", "audit", "--data", str(env.server.data)).stdout
    assert wrong not in text and wrong[5:] not in text
    for token in env.tokens.values():
        assert token not in text


def test_audit_command_limits_filters_and_orders(env: Env, unique: str) -> None:
    data = str(env.server.data)
    for bad in ("0", "-3"):
        r = run_cli("serve", "audit", "--data", data, "--limit", bad, check=False)
        assert r.returncode == 1 and r.stderr.strip() == "esc-pulumi: --limit must be a positive number of entries"
    r = run_cli("serve", "audit", "--data", data, "--limit", "many", check=False)
    assert r.returncode == 2 and "--limit" in r.stderr
    name = f"ordered-{unique}"
    make(env, "ord", name, "values: {a: 1}\n")
    for _ in range(3):
        assert env.request("POST", f"/environments/{ORG}/ord/{name}/open", role="opener")[0] == 200
    every = audit(env.server.data)
    times = [e["time"] for e in every]
    assert times == sorted(times)
    mine = audit(env.server.data, "--env", f"ord/{name}")
    assert [e["action"] for e in mine] == ["environment.create", "environment.update"] + ["environment.open"] * 3
    last2 = audit(env.server.data, "--env", f"ord/{name}", "--limit", "2")
    assert last2 == mine[-2:]
    by_actor = audit(env.server.data, "--env", f"ord/{name}", "--actor", "admin-user")
    assert [e["action"] for e in by_actor] == ["environment.create", "environment.update"]
    assert audit(env.server.data, "--env", f"ord/{name}", "--org", "other") == []
    # bare names are project default
    make(env, "default", name, "values: {a: 1}\n")
    assert [e["target"] for e in audit(env.server.data, "--env", name)] == [f"default/{name}"] * 2
    text = run_cli("serve", "audit", "--data", data, "--env", f"ord/{name}", "--limit", "1").stdout
    assert text.count("\n") == 1 and f"ord/{name}" in text and "environment.open" in text


def test_audit_text_output_escapes_request_paths(env: Env, unique: str) -> None:
    # A denied request's path is the client's text: it must not forge lines of the audit output.
    forged = f"p%0a2099-01-01T00:00:00.000Z%20%20{ORG}%20%20admin-user"
    status, _, _ = env.request("GET", f"/environments/{ORG}/{forged}/x{unique}", role=None)
    assert status in (401, 404)
    deadline = time.monotonic() + 20
    while True:
        text = run_cli("serve", "audit", "--data", str(env.server.data), "--action", "access.denied").stdout
        if unique in text or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert unique in text
    assert not any(line.startswith("2099-") for line in text.splitlines())
    assert "p\\n2099" in text


@pytest.mark.sqlite_only  # SQLite's files in the data folder; PostgreSQL keeps none there
def test_audit_of_a_missing_data_folder_is_one_line(tmp_path: Path) -> None:
    r = run_cli("serve", "audit", "--data", str(tmp_path / "nothing"), check=False)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "no server data" in r.stderr
    assert not (tmp_path / "nothing").exists()


def test_repeated_opens_of_latest_see_every_change(env: Env, unique: str) -> None:
    # Repeated opens reuse an evaluation while its revisions stand; a new revision of the
    # environment or of an import, or an environment deleted and created again, is seen at the
    # next open, and the log names the revision each open read.
    c = env.client("admin")
    base, app = f"base-{unique}", f"app-{unique}"
    make(env, "proj", base, "values:\n  region: eu-west-1\n")
    make(env, "proj", app, f"imports: [proj/{base}]\nvalues:\n  url: ${{region}}/v1\n")

    def url() -> str:
        return c.open_and_read_environment(ORG, "proj", app)[1]["url"]

    assert url() == url() == "eu-west-1/v1"
    c.update_environment_yaml(ORG, "proj", app, f"imports: [proj/{base}]\nvalues:\n  url: ${{region}}/v2\n")
    assert url() == url() == "eu-west-1/v2"
    c.update_environment_yaml(ORG, "proj", base, "values:\n  region: us-east-2\n")
    assert url() == "us-east-2/v2"
    c.delete_environment(ORG, "proj", app)
    make(env, "proj", app, f"imports: [proj/{base}]\nvalues:\n  url: ${{region}}/v3\n")
    assert url() == url() == "us-east-2/v3"
    opens = [e["detail"] for e in audit(env.server.data, "--env", f"proj/{app}")
             if e["action"] == "environment.open" and e["target"] == f"proj/{app}"]
    assert opens == ["revision 2"] * 2 + ["revision 3"] * 3 + ["revision 2"] * 2, opens
