"""Tokens (security review §4): list, revoke, expiry, names, last use; a running server sees a
revocation (or a deleted row) within a second; only hashes are stored."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Iterator

import pytest

from .conftest import ORG, Env, create_token, db_execute, run_cli, start_env, stored_bytes


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, backend_name: str) -> Iterator[Env]:
    e = start_env(tmp_path_factory.mktemp("esc-tokens"))
    try:
        yield e
    finally:
        e.server.stop()


def tokens(data: Path, *args: str) -> list[dict]:
    out = run_cli("serve", "token", "list", "--data", str(data), "--json", *args).stdout
    return [json.loads(line) for line in out.splitlines()]


def by_name(data: Path, name: str) -> dict:
    (t,) = [t for t in tokens(data) if t["name"] == name and t["status"] == "active"] or \
        [t for t in tokens(data) if t["name"] == name][-1:]
    return t


def ping_org(env: Env, token: str) -> int:
    return env.request("GET", f"/environments/{ORG}", token=token)[0]


def test_list_shows_every_token_but_never_the_token(service: Env) -> None:
    data = service.server.data
    listed = tokens(data)
    assert {(t["org"], t["name"], t["role"], t["status"]) for t in listed} >= {
        (ORG, "reader-user", "reader", "active"), (ORG, "admin-user", "admin", "active"),
        ("other", "other-admin", "admin", "active")}
    assert all(len(t["id"]) == 12 and t["expires"] is None for t in listed)
    assert [t["org"] for t in tokens(data, "--org", "other")] == ["other"]
    text = run_cli("serve", "token", "list", "--data", str(data)).stdout
    assert text.splitlines()[0].split() == ["ID", "ORG", "NAME", "ROLE", "STATUS", "CREATED", "EXPIRES", "LAST",
                                            "USED"]
    everything = text + json.dumps(listed)
    for token in [*service.tokens.values(), service.other_admin]:
        assert token not in everything and token[5:] not in everything


def test_tokens_are_stored_hashed(service: Env) -> None:
    rows = db_execute(service.server.data, "SELECT hash FROM tokens")
    assert rows and all(len(h) == 64 and all(c in "0123456789abcdef" for c in h) for (h,) in rows)
    db = stored_bytes(service.server.data)
    for token in service.tokens.values():
        assert token.encode() not in db


def test_revoke_reaches_the_running_server_within_a_second(service: Env, unique: str) -> None:
    data = service.server.data
    name = f"ci-{unique}"
    token = create_token(data, ORG, "reader", name=name)
    assert ping_org(service, token) == 200  # the server has it cached now
    r = run_cli("serve", "token", "revoke", "--data", str(data), "--org", ORG, name)
    assert r.returncode == 0 and f"revoked reader token '{name}'" in r.stderr and token not in r.stderr
    time.sleep(1.0)  # the promise: within a second
    status, _, body = service.request("GET", f"/environments/{ORG}", token=token)
    assert status == 401 and body["message"] == "unauthorized: the token was revoked"
    listed = by_name(data, name)
    assert listed["status"] == "revoked" and listed["revoked"]
    # a second revoke says so; a revoked name may be used again
    again = run_cli("serve", "token", "revoke", "--data", str(data), listed["id"])
    assert again.returncode == 0 and "already revoked" in again.stderr
    fresh = create_token(data, ORG, "reader", name=name)
    assert ping_org(service, fresh) == 200
    log = run_cli("serve", "audit", "--data", str(data), "--action", "token.revoke", "--json").stdout
    assert any(json.loads(line)["target"] == name for line in log.splitlines())


def test_revoke_by_id_and_ambiguity(service: Env, unique: str) -> None:
    data = service.server.data
    name = f"twice-{unique}"
    a = create_token(data, ORG, "reader", name=name)
    b = create_token(data, "other", "reader", name=name)
    r = run_cli("serve", "token", "revoke", "--data", str(data), name, check=False)
    assert r.returncode == 1 and "2 tokens match" in r.stderr and r.stderr.count("\n") == 1
    target = [t for t in tokens(data, "--org", "other") if t["name"] == name][0]
    assert run_cli("serve", "token", "revoke", "--data", str(data), target["id"]).returncode == 0
    time.sleep(1.0)
    assert service.request("GET", "/environments/other", token=b)[0] == 401
    assert ping_org(service, a) == 200
    r = run_cli("serve", "token", "revoke", "--data", str(data), f"nobody-{unique}", check=False)
    assert r.returncode == 1 and "no token named or with id" in r.stderr


def test_a_deleted_row_stops_working_within_a_second(service: Env, unique: str) -> None:
    data = service.server.data
    token = create_token(data, ORG, "reader", name=f"deleted-{unique}")
    assert ping_org(service, token) == 200
    db_execute(data, "DELETE FROM tokens WHERE name=?", (f"deleted-{unique}",))
    time.sleep(1.0)
    assert ping_org(service, token) == 401


def test_expiry(service: Env, unique: str) -> None:
    data = service.server.data
    name = f"temp-{unique}"
    r = run_cli("serve", "token", "create", "--data", str(data), "--org", ORG, "--role", "reader", "--name", name,
                "--expires", "90d")
    token = r.stdout.strip().splitlines()[-1]
    assert "expires 20" in r.stderr
    listed = by_name(data, name)
    from datetime import datetime, timezone

    expires = datetime.fromisoformat(listed["expires"].replace("Z", "+00:00"))
    days = (expires - datetime.now(timezone.utc)).total_seconds() / 86400
    assert 89.9 < days <= 90
    assert ping_org(service, token) == 200
    # Move the expiry into the past, as time would.
    db_execute(data, "UPDATE tokens SET expires='2000-01-01T00:00:00.000Z' WHERE name=?", (name,))
    time.sleep(1.0)
    status, _, body = service.request("GET", f"/environments/{ORG}", token=token)
    assert status == 401 and "expired" in body["message"]
    assert by_name(data, name)["status"] == "expired"
    for bad, message in (("soon", "write a number and a unit"), ("0d", "longer than 0")):
        r = run_cli("serve", "token", "create", "--data", str(data), "--org", ORG, "--role", "reader",
                    "--expires", bad, check=False)
        assert r.returncode == 1 and message in r.stderr and r.stderr.count("\n") == 1


def test_names_are_unique_per_organization(service: Env, unique: str) -> None:
    data = service.server.data
    name = f"dup-{unique}"
    create_token(data, ORG, "reader", name=name)
    r = run_cli("serve", "token", "create", "--data", str(data), "--org", ORG, "--role", "admin", "--name", name,
                check=False)
    assert r.returncode == 1 and "already has a token named" in r.stderr and r.stdout == ""
    create_token(data, "other", "reader", name=name)  # another organisation may
    r = run_cli("serve", "token", "create", "--data", str(data), "--org", ORG, "--role", "admin", "--name",
                "bad\nname", check=False)
    assert r.returncode == 1 and "invalid token name" in r.stderr


def test_last_used_time_is_recorded(service: Env, unique: str) -> None:
    data = service.server.data
    name = f"used-{unique}"
    token = create_token(data, ORG, "reader", name=name)
    assert by_name(data, name)["lastUsed"] is None
    before = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 1))
    assert ping_org(service, token) == 200
    deadline = time.monotonic() + 20  # written within 5 s, in the background
    while by_name(data, name)["lastUsed"] is None and time.monotonic() < deadline:
        time.sleep(0.2)
    used = by_name(data, name)["lastUsed"]
    assert used is not None and used >= before


@pytest.mark.sqlite_only  # SQLite's files in the data folder; PostgreSQL keeps none there
def test_token_commands_on_a_missing_data_folder(tmp_path: Path) -> None:
    for args in (["list"], ["revoke", "x"]):
        r = run_cli("serve", "token", *args, "--data", str(tmp_path / "none"), check=False)
        assert r.returncode == 1 and "no server data" in r.stderr
    assert not (tmp_path / "none").exists()
