"""Reusing an evaluation across opens of a stored environment: it is reused only while the root
and every import still resolve to the revisions it read (EscServer.resolve_open), on both stores."""
from __future__ import annotations

from pathlib import Path

from esc_pulumi.esc import Value
from esc_pulumi.server.app import EscServer, ServerConfig
from esc_pulumi.server.sessions import Evaluation
from esc_pulumi.server.store import TokenRecord, now_iso

from .conftest import ORG, Env, database_for


def _open_value(env: Env, project: str, name: str) -> dict:
    status, _, body = env.request("POST", f"/environments/{ORG}/{project}/{name}/open", role="opener")
    assert status == 200, body
    status, _, body = env.request("GET", f"/environments/{ORG}/{project}/{name}/open/{body['id']}", role="opener")
    assert status == 200, body
    return {k: v["value"] for k, v in body["properties"].items()}  # the detailed model's top values


def _patch(env: Env, project: str, name: str, text: str) -> None:
    status, _, body = env.request("PATCH", f"/environments/{ORG}/{project}/{name}", text)
    assert status == 200, body


def test_an_open_sees_every_new_revision_of_its_root_and_imports(env: Env, unique: str) -> None:
    base, pin, top = f"base-{unique}", f"pin-{unique}", f"top-{unique}"
    for name in (base, pin, top):
        assert env.request("POST", f"/environments/{ORG}", {"project": "oc", "name": name})[0] == 204
    _patch(env, "oc", base, "values:\n  b: one\n")
    _patch(env, "oc", pin, "values:\n  p: first\n")  # revision 2
    _patch(env, "oc", top, f"imports:\n  - oc/{base}\n  - oc/{pin}@2\nvalues:\n  t: 1\n")
    want = {"b": "one", "p": "first", "t": 1}
    assert _open_value(env, "oc", top) == want
    assert _open_value(env, "oc", top) == want  # the second open reuses the first's evaluation
    _patch(env, "oc", base, "values:\n  b: two\n")  # an import's new head
    assert _open_value(env, "oc", top) == {**want, "b": "two"}
    _patch(env, "oc", pin, "values:\n  p: second\n")  # pinned at 2: not seen
    assert _open_value(env, "oc", top) == {**want, "b": "two"}
    _patch(env, "oc", top, f"imports:\n  - oc/{base}\nvalues:\n  t: 2\n")  # the root's new head
    assert _open_value(env, "oc", top) == {"b": "two", "t": 2}
    assert _open_value(env, "oc", top) == {"b": "two", "t": 2}


def test_the_latest_open_is_checked_against_what_it_read(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = EscServer(ServerConfig(data_dir=data, database=database_for(data)))
    try:
        store = server.store
        store.create_environment(ORG, "p", "base", "values: {b: 1}\n", "ci")
        store.create_environment(ORG, "p", "top", "imports: [p/base]\n", "ci")
        actor = TokenRecord("ab" * 32, ORG, "opener", "ci", now_iso())
        env_id, number, key, cached = server.resolve_open(ORG, "p", "top", None, actor)
        assert key == ("rev", env_id, number) and cached is None  # nothing opened yet
        base_id, base_rev = store.resolve_version(ORG, "p", "base", None)
        ev = Evaluation(Value({}), [], (("p/base", base_id, base_rev),))
        server.remember_open(ORG, key, actor, ev, dynamic=False)
        assert server.resolve_open(ORG, "p", "top", None, actor) == (env_id, number, key, ev)
        assert server.resolve_open(ORG, "p", "top", "latest", actor)[3] is ev
        other = TokenRecord("cd" * 32, ORG, "opener", "someone-else", now_iso())
        assert server.resolve_open(ORG, "p", "top", None, other)[3] is None  # the context names the actor
        store.update_environment(ORG, "p", "base", "values: {b: 2}\n", "ci")
        assert server.resolve_open(ORG, "p", "top", None, actor) == (env_id, number, key, None)
        rev = store.update_environment(ORG, "p", "top", "imports: [p/base]\nvalues: {t: 1}\n", "ci")
        assert server.resolve_open(ORG, "p", "top", None, actor) == (env_id, rev.number, ("rev", env_id, rev.number),
                                                                     None)
    finally:
        server.store.close()
