"""The store protocol itself, on SQLite and on PostgreSQL (the same tests, parametrised by the
``backend_name`` of conftest): two store objects on one database stand for two replicas."""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from esc_pulumi.server.sessions import SESSION_OVERHEAD, SessionLimits
from esc_pulumi.server.shared_sessions import SessionRow, session_rows
from esc_pulumi.server.store import AuditEntry, Conflict, NotFound, Store, TokenRecord, now_iso, open_store
from esc_pulumi.server.store import migrations

from .conftest import database_for


@pytest.fixture
def two(tmp_path: Path, backend_name: str) -> Iterator[tuple[Store, Store]]:
    data = tmp_path / "data"
    a = open_store(data, database_for(data))
    b = open_store(data, database_for(data))
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def test_what_one_writes_the_other_reads(two: tuple[Store, Store]) -> None:
    a, b = two
    rev = a.create_environment("acme", "p", "e", "values: {}\n", "ci")
    assert b.get_revision("acme", "p", "e", "latest").etag == rev.etag
    b.update_environment("acme", "p", "e", "values: {a: 1}\n", "ci", if_match=rev.etag)
    with pytest.raises(Conflict, match="If-Match is stale"):
        a.update_environment("acme", "p", "e", "values: {a: 2}\n", "ci", if_match=rev.etag)
    with pytest.raises(Conflict, match="already exists"):
        b.create_environment("acme", "p", "e", "", "ci")
    a.set_revision_tag("acme", "p", "e", "stable", 1, "ci", create=True)
    assert b.resolve_version("acme", "p", "e", "stable")[1] == 1
    assert [t.name for t in b.list_revision_tags("acme", "p", "e", None, 10)] == ["latest", "stable"]
    b.create_env_tag("acme", "p", "e", "team", "core", "ci")
    assert a.get_env_tag("acme", "p", "e", "team").value == "core"
    a.clone_environment("acme", "p", "e", "p", "copy", "ci", history=True, env_tags=True, revision_tags=True)
    assert [r.number for r in b.list_revisions("acme", "p", "copy", None, 10)] == [2, 1]
    # Names sort by code point on both stores (pages continue where the last one stopped).
    for name in ("Zed", "alpha", "_x", "beta"):
        a.create_environment("acme", "q", name, "", "ci")
    names = [e.name for e in b.list_environments("acme", ("q", ""), 10)]
    assert names == sorted(names) == ["Zed", "_x", "alpha", "beta"]
    assert [e.name for e in b.list_environments("acme", ("q", "_x"), 10)] == ["alpha", "beta"]
    record = TokenRecord("ab" * 32, "acme", "reader", "ci", now_iso())
    a.add_token(record)
    with pytest.raises(Conflict, match="already has a token named"):
        b.add_token(TokenRecord("cd" * 32, "acme", "reader", "ci", now_iso()))
    b.revoke_token(record.token_hash, "cli")
    assert a.find_token(record.token_hash).status(0) == "revoked"  # type: ignore[union-attr]
    actions = [e.action for e in a.read_audit("acme")]
    assert actions.count("environment.update") == 1 and "token.revoke" in actions
    b.set_meta("k", "v")
    assert a.get_meta("k") == "v"
    b.delete_environment("acme", "p", "e", "ci")
    with pytest.raises(NotFound):
        a.get_environment("acme", "p", "e")


def test_the_heads_of_many_environments_in_one_query(two: tuple[Store, Store]) -> None:
    a, b = two
    e = a.create_environment("acme", "p", "e", "values: {}\n", "ci")
    a.update_environment("acme", "p", "e", "values: {a: 1}\n", "ci", if_match=e.etag)
    f = a.create_environment("acme", "p", "f", "values: {}\n", "ci")
    a.create_environment("other", "p", "g", "values: {}\n", "ci")
    names = [("p", "f"), ("p", "missing"), ("p", "e"), ("p", "g"), ("p", "e")]
    got = b.resolve_latest_many("acme", names)
    assert got == [(f.env_id, 1), None, (e.env_id, 2), None, (e.env_id, 2)]  # g is another org's
    assert got == [b.resolve_version("acme", p, n, None) if n in ("e", "f") else None for p, n in names]
    assert b.resolve_latest_many("acme", []) == []
    many = [("p", f"n{i}") for i in range(25_000)] + [("p", "e")]  # past SQLite's parameter limit
    assert b.resolve_latest_many("acme", many)[-1] == (e.env_id, 2)


def test_a_batch_of_audit_entries_past_the_parameter_limit_is_written_whole(two: tuple[Store, Store]) -> None:
    # A group commit writes its entries with a few multi-row statements: all of them, in order,
    # the token's last-used time with them.
    a, b = two
    record = TokenRecord("ef" * 32, "acme", "reader", "ci", now_iso())
    a.add_token(record)
    entries = [AuditEntry(f"2026-01-01T00:00:{i // 100:02d}.{i % 100:02d}Z", "acme", "ci", "environment.open",
                          f"p/e{i}", f"revision {i}") for i in range(500)]  # 3,000 parameters
    a.append_audit(entries, {record.token_hash: "2026-01-02T00:00:00Z"})
    got = [e for e in b.read_audit("acme") if e.action == "environment.open"]
    assert [(e.target, e.detail) for e in got] == [(f"p/e{i}", f"revision {i}") for i in range(500)]
    assert b.find_token(record.token_hash).last_used == "2026-01-02T00:00:00Z"  # type: ignore[union-attr]


def test_twenty_if_match_writers_on_two_stores_lose_no_update(two: tuple[Store, Store]) -> None:
    a, b = two
    a.create_environment("acme", "p", "race", "n: 0\n", "ci")
    won: list[int] = []
    lock = threading.Lock()

    def writer(k: int) -> None:
        store = (a, b)[k % 2]
        for _ in range(3):
            while True:
                head = store.get_revision("acme", "p", "race", "latest")
                try:
                    rev = store.update_environment("acme", "p", "race", f"n: {head.number}\nby: w{k}\n", "ci",
                                                   if_match=head.etag)
                except Conflict:
                    continue
                with lock:
                    won.append(rev.number)
                break

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(won) == list(range(2, 62))  # dense and unique: 60 acknowledged updates
    revisions = b.list_revisions("acme", "p", "race", None, 100)
    assert [r.number for r in revisions] == list(range(61, 0, -1))
    for r in revisions[:-1]:
        # Each revision was written against its predecessor (no update based on a stale read).
        assert a.get_revision("acme", "p", "race", r.number).yaml.startswith(f"n: {r.number - 1}\n")


def test_migrations_are_recorded_and_reapplied_never(two: tuple[Store, Store], tmp_path: Path) -> None:
    a, _ = two
    url = database_for(tmp_path / "data")
    if url:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            assert migrations.pending_postgres(conn) == []
            assert migrations.apply_postgres(conn) == []
    else:
        import sqlite3

        con = sqlite3.connect(tmp_path / "data" / "esc.db", isolation_level=None)
        assert migrations.pending_sqlite(con) == [] and migrations.apply_sqlite(con) == []
        con.close()


T0 = time.time()


def _row(sid: str, org: str, value: str, size: int, created: float) -> SessionRow:
    # ``created`` orders the sessions (oldest first); all expire an hour from now.
    return SessionRow(sid, org, "p", "e", "p/e", T0 + created / 1e6, T0 + 3600, value, size)


def test_shared_sessions_keep_the_bounds_across_stores(two: tuple[Store, Store]) -> None:
    a, b = two
    ra, rb = session_rows(a), session_rows(b)
    limits = SessionLimits(max_bytes=10 * 1000 + 10 * SESSION_OVERHEAD, max_sessions=100)
    # Two "replicas" insert alternately; the bounds hold for their sessions together.
    for i in range(30):
        (ra, rb)[i % 2].insert(_row(f"s{i}", "acme", f"v{i}", 1000, 1000.0 + i), b"payload", limits)
    assert ra.count() == 10
    assert ra.get("s29") is not None and rb.get("s19") is None  # the oldest went first
    # Sessions of one value share it: counted once (each further one costs only its overhead,
    # so more sessions fit than with distinct values: 7 distinct ones and the 5 sharing one).
    for i in range(5):
        rb.insert(_row(f"shared{i}", "acme", "one-value", 1000, 2000.0 + i), b"payload", limits)
    assert rb.count() == 12 and ra.get("s22") is None and ra.get("s23") is not None
    assert all(ra.get(f"shared{i}") is not None for i in range(5))
    # A newcomer organisation: the one most over its share (acme) loses its own oldest.
    ra.insert(_row("other", "other", "ov", 1000, 3000.0), b"x", limits)
    assert rb.get("other") is not None and ra.get("s23") is None and ra.count() == 12
    assert ra.payload("ov") == b"x"
    # Expired: every session goes, and the values with them.
    assert ra.sweep(now=T0 + 7200) == 12 and rb.count() == 0 and rb.payload("ov") is None
    assert rb.payload("one-value") is None


def test_one_group_commit_of_many_sessions_keeps_the_bounds(two: tuple[Store, Store]) -> None:
    # The audit writer commits every open that arrived meanwhile at once: the bounds hold
    # inside the batch too (evicting from the rows written earlier in it), and sessions of one
    # value, in the batch or before it, share that value.
    a, b = two
    ra, rb = session_rows(a), session_rows(b)
    limits = SessionLimits(max_bytes=10 * 1000 + 10 * SESSION_OVERHEAD, max_sessions=100)
    ra.insert(_row("before", "acme", "kept", 1000, 1.0), b"old", limits)
    batch = [(_row(f"b{i}", "acme", f"v{i}", 1000, 10.0 + i), b"payload") for i in range(14)]
    batch += [(_row(f"twin{i}", "acme", "kept", 1000, 100.0 + i), b"old") for i in range(3)]
    rb.commit([], None, batch, limits)
    # 11 values' worth fit (ten 1000-byte values and the overheads): the oldest went first.
    assert ra.get("before") is None and ra.get("b0") is None and ra.get("b13") is not None
    assert all(ra.get(f"twin{i}") is not None for i in range(3))
    assert ra.payload("kept") == b"old" and ra.payload("v0") is None
    total = ra.count()
    assert total <= limits.max_sessions
    assert ra.count() == rb.count() == total
