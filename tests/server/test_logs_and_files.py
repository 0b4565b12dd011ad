"""The request log and the data folder (security review §7): a decoded ``%0a`` cannot forge a
log line, no session id is logged, and the database, its WAL files and the key are 0600 in a
0700 folder whatever the umask."""
from __future__ import annotations

import os
import sqlite3
import stat
import time
from pathlib import Path

import pytest

from .conftest import ORG, Env, ServerProcess, create_token, run_cli, start_env, stored_bytes


def mode(p: Path) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def wait_for_log(server: ServerProcess, needle: str) -> str:
    deadline = time.monotonic() + 10
    while True:
        text = server.log_path.read_text(encoding="utf-8", errors="replace")
        if needle in text or time.monotonic() > deadline:
            return text
        time.sleep(0.05)


def test_a_decoded_newline_cannot_forge_a_log_line(env: Env, unique: str) -> None:
    forged = f"x%0d%0a2099-01-01 00:00:00,000 esc_pulumi.server.access INFO GET /forged-{unique} 200 1.0ms"
    status, _, _ = env.request("GET", f"/environments/{ORG}/{forged.replace(' ', '%20')}/e", role="reader")
    assert status == 404
    log = wait_for_log(env.server, f"forged-{unique}")
    assert f"forged-{unique}" in log
    assert not any(line.startswith("2099-") for line in log.splitlines())
    assert "x\\r\\n2099-01-01" in log
    # other control and bidirectional characters are escaped as well
    env.request("GET", f"/environments/{ORG}/a%1b%5b2J%e2%80%ae-{unique}/e", role="reader")
    log = wait_for_log(env.server, f"\\u202e-{unique}")
    assert f"a\\x1b[2J\\u202e-{unique}" in log and "\x1b" not in log


def test_session_ids_are_not_logged(env: Env, unique: str) -> None:
    name = f"logged-{unique}"
    assert env.request("POST", f"/environments/{ORG}", {"project": "log", "name": name})[0] == 204
    status, _, body = env.request("POST", f"/environments/{ORG}/log/{name}/open", role="opener")
    assert status == 200
    sid = body["id"]
    assert env.request("GET", f"/environments/{ORG}/log/{name}/open/{sid}", role="opener")[0] == 200
    assert env.request("GET", f"/environments/{ORG}/log/{name}/open//{sid}?property=x", role="opener")[0] == 404
    assert env.request("GET", f"/environments/{ORG}/log/{name}/open/{sid}", role="reader")[0] == 403
    status, _, body = env.request("POST", f"/environments/{ORG}/yaml/open", "values: {a: 1}\n", role="opener")
    assert env.request("GET", f"/environments/{ORG}/yaml/open/{body['id']}", role="opener")[0] == 200
    log = wait_for_log(env.server, f"GET /api/esc/environments/{ORG}/yaml/open/{{session}} 200")
    assert f"GET /api/esc/environments/{ORG}/log/{name}/open/{{session}} 200" in log
    assert f"GET /api/esc/environments/{ORG}/yaml/open/{{session}} 200" in log
    assert sid not in log and body["id"] not in log
    deadline = time.monotonic() + 10  # the denied read is audited in the background
    while True:
        audit = run_cli("serve", "audit", "--data", str(env.server.data), "--env", f"log/{name}").stdout
        if "access.denied" in audit or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert "access.denied" in audit and "{session}" in audit and sid not in audit


@pytest.mark.sqlite_only  # SQLite's files in the data folder; PostgreSQL keeps none there
def test_new_data_folder_is_private_whatever_the_umask(tmp_path: Path) -> None:
    data = tmp_path / "fresh"
    # token create makes the folder and the database: with umask 0 nothing may become public
    old = os.umask(0)
    try:
        token = create_token(data, ORG, "admin", name="admin-user")
    finally:
        os.umask(old)
    assert mode(data) == 0o700 and mode(data / "esc.db") == 0o600
    server = ServerProcess(data, umask=0).start()
    try:
        env = Env(server, {"admin": token}, "")
        assert env.request("POST", f"/environments/{ORG}", {"project": "p", "name": "e"})[0] == 204
        names = {p.name for p in data.iterdir()}
        assert {"esc.db", "esc.db-wal", "esc.db-shm", "server.key"} <= names
        for name in ("esc.db", "esc.db-wal", "esc.db-shm", "server.key"):
            assert mode(data / name) == 0o600, name
        assert mode(data) == 0o700
        assert "open to other users" not in server.log_path.read_text()
    finally:
        server.stop()


@pytest.mark.sqlite_only  # SQLite's files in the data folder; PostgreSQL keeps none there
def test_an_existing_open_folder_warns_and_loose_files_are_tightened(tmp_path: Path) -> None:
    data = tmp_path / "shared"
    data.mkdir()
    os.chmod(data, 0o755)
    con = sqlite3.connect(data / "esc.db")  # a database made by something else, 0644
    con.execute("CREATE TABLE x (a)")
    con.commit()
    con.close()
    os.chmod(data / "esc.db", 0o644)
    r = run_cli("serve", "token", "create", "--data", str(data), "--org", ORG, "--role", "admin")
    assert f"the data folder {data} is open to other users (mode 0755)" in r.stderr
    assert f"chmod 700 {data}" in r.stderr
    assert mode(data / "esc.db") == 0o600
    assert mode(data) == 0o755  # a folder someone made is theirs to change
    server = ServerProcess(data).start()
    try:
        log = server.log_path.read_text()
        assert "is open to other users" in log
        for p in data.iterdir():
            if p.name.startswith("esc.db") or p.name == "server.key":
                assert mode(p) == 0o600, p.name
    finally:
        server.stop()


def test_the_database_holds_no_session_id_either(tmp_path: Path) -> None:
    env = start_env(tmp_path / "data")
    try:
        assert env.request("POST", f"/environments/{ORG}", {"project": "p", "name": "e"})[0] == 204
        sid = env.request("POST", f"/environments/{ORG}/p/e/open", role="opener")[2]["id"]
        assert env.request("GET", f"/environments/{ORG}/p/e/open/{sid}", role="reader")[0] == 403
    finally:
        env.server.stop()
    blob = stored_bytes(env.server.data)
    assert sid.encode() not in blob and b"open" in blob  # the audit's rows are there; the id is not
