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

from .conftest import database_for, db_execute


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
    g = b.resolve_version("other", "p", "g", None)
    keys = [("acme", "p", "f"), ("acme", "p", "missing"), ("acme", "p", "e"), ("acme", "p", "g"), ("acme", "p", "e"),
            ("other", "p", "g"), ("other", "p", "e")]
    got = b.latest_heads(keys)
    assert got == [(f.env_id, 1), None, (e.env_id, 2), None, (e.env_id, 2), g, None]  # each in its own org
    assert got == [b.resolve_version(o, p, n, None) if (o, n) in (("acme", "e"), ("acme", "f"), ("other", "g"))
                   else None for o, p, n in keys]
    assert b.latest_heads([]) == []
    many = [("acme", "p", f"n{i}") for i in range(25_000)] + [("acme", "p", "e")]  # past SQLite's parameter limit
    assert b.latest_heads(many)[-1] == (e.env_id, 2)


def test_a_batch_of_audit_entries_past_the_parameter_limit_is_written_whole(two: tuple[Store, Store]) -> None:
    # A group commit writes its entries with a few multi-row statements: all of them, in order,
    # the token's last-used time with them.
    a, b = two
    record = TokenRecord("ef" * 32, "acme", "reader", "ci", now_iso())
    a.add_token(record)
    n = 11_000  # 66,000 parameters: past SQLite's 999 and PostgreSQL's 65,535
    entries = [AuditEntry(f"2026-01-01T00:{i // 6000:02d}:{i // 100 % 60:02d}.{i % 100:02d}Z", "acme", "ci",
                          "environment.open", f"p/e{i}", f"revision {i}") for i in range(n)]
    a.append_audit(entries, {record.token_hash: "2026-01-02T00:00:00Z"})
    got = [e for e in b.read_audit("acme") if e.action == "environment.open"]
    assert [(e.target, e.detail) for e in got] == [(f"p/e{i}", f"revision {i}") for i in range(n)]
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


def _real_usage(data: Path) -> dict[str, tuple[int, int]]:
    """``{org: (sessions, bytes of values)}`` counted from the session tables themselves."""
    sessions = dict(db_execute(data, "SELECT org, COUNT(*) FROM sessions GROUP BY org"))
    values = dict(db_execute(data, "SELECT org, SUM(size) FROM session_values GROUP BY org"))
    return {org: (int(sessions.get(org, 0)), int(values.get(org, 0))) for org in set(sessions) | set(values)}


def test_the_usage_rows_stay_the_sums_of_the_sessions(two: tuple[Store, Store], tmp_path: Path) -> None:
    # A group commit reads what each organisation holds from its usage row (kept by triggers),
    # not a count of every session: the rows must equal the real sums after every kind of change.
    a, b = two
    data = tmp_path / "data"
    ra, rb = session_rows(a), session_rows(b)
    limits = SessionLimits(max_bytes=10 * 1000 + 10 * SESSION_OVERHEAD, max_sessions=12)
    for i in range(8):  # inserts, values shared by pairs
        (ra, rb)[i % 2].insert(_row(f"a{i}", "acme", f"v{i // 2}", 1000, 1.0 + i), b"x", limits)
    assert ra.usage() == _real_usage(data) == {"acme": (8, 4000)}
    for i in range(10):  # evictions: acme over the byte bound, then a second organisation
        rb.commit([], None, [(_row(f"c{i}", "acme" if i < 6 else "corp", f"w{i}", 1000, 100.0 + i), b"y")],
                  limits)
    assert ra.usage() == _real_usage(data)
    assert ra.count() == sum(n for n, _ in _real_usage(data).values()) <= limits.max_sessions
    # Expiry (the sweep), then a delete made by hand in the database: the triggers follow both.
    ra.insert(SessionRow("old", "corp", "p", "e", "p/e", T0, T0 + 1, "gone-soon", 500), b"z", limits)
    assert rb.sweep(now=T0 + 2) == 1
    assert ra.usage() == _real_usage(data)
    db_execute(data, "DELETE FROM sessions WHERE org = ?", ("corp",))
    db_execute(data, "DELETE FROM session_values WHERE org = ?", ("corp",))
    assert ra.usage() == _real_usage(data) and "corp" not in ra.usage()
    left = ra.usage()["acme"][0]
    assert ra.sweep(now=T0 + 7200) == left and ra.usage() == _real_usage(data) == {}


def test_expired_sessions_make_room_before_a_live_one_is_evicted(two: tuple[Store, Store]) -> None:
    # The group commit no longer deletes the expired sessions each time (the sweep does, every
    # second); when a batch needs room, they still go first, as in memory.
    a, b = two
    ra, rb = session_rows(a), session_rows(b)
    limits = SessionLimits(max_sessions=6)
    now = time.time()
    for i in range(3):
        ra.insert(SessionRow(f"dead{i}", "acme", "p", "e", "p/e", now - 100 + i, now - 1, f"d{i}", 10), b"d", limits)
    for i in range(3):
        ra.insert(_row(f"live{i}", "acme", f"l{i}", 10, 10.0 + i), b"l", limits)
    assert ra.count() == 6  # the expired ones are still there: nothing needed their room
    rb.commit([], None, [(_row("new", "acme", "n", 10, 20.0), b"n")], limits)
    assert all(ra.get(f"live{i}") is not None for i in range(3)) and ra.get("new") is not None
    assert ra.count() == 4 and ra.payload("d0") is None


def test_two_processes_committing_in_one_organisation_keep_the_bound(two: tuple[Store, Store],
                                                                     tmp_path: Path) -> None:
    # Two stores stand for two server processes, each with its audit writer's group commits,
    # all in one organisation; an observer checks the tables meanwhile, not only at the end.
    a, b = two
    data = tmp_path / "data"
    limits = SessionLimits(max_bytes=20 * (1000 + SESSION_OVERHEAD), max_sessions=1000)
    stop = threading.Event()
    seen: list[int] = []
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        rows = session_rows((a, b)[k])
        try:
            for n in range(40):
                batch = [(_row(f"w{k}-{n}-{i}", "acme", f"v{k}-{n}-{i}", 1000, 10.0 * n + i + k / 2), b"p")
                         for i in range(3)]
                rows.commit([], None, batch, limits)
        except BaseException as e:  # noqa: BLE001 - reported by the test
            errors.append(e)

    def observer() -> None:
        while not stop.is_set():
            held = sum(n * SESSION_OVERHEAD + size for n, size in _real_usage(data).values())
            seen.append(held)

    threads = [threading.Thread(target=writer, args=(k,)) for k in (0, 1)]
    watch = threading.Thread(target=observer)
    watch.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    watch.join()
    assert not errors
    assert seen and max(seen) <= limits.max_bytes
    assert session_rows(a).usage() == _real_usage(data)
    assert session_rows(a).count() == 20  # full: each later batch evicted the oldest


def test_a_group_commit_is_on_disk_when_it_returns(two: tuple[Store, Store], tmp_path: Path,
                                                   backend_name: str) -> None:
    # On PostgreSQL the session transaction commits without waiting for its flush (so the
    # advisory lock is not held through it), and a synchronous transaction behind it in the
    # pipeline makes both durable before commit() returns: the WAL is flushed up to where it
    # ends. Without that second transaction the flush would come from the WAL writer, up to
    # 200 ms later (a background record may move the insert position meanwhile: hence "most").
    a, _ = two
    data = tmp_path / "data"
    rows = session_rows(a)
    entry = AuditEntry(now_iso(), "acme", "ci", "environment.open", "p/e", "revision 1")
    if backend_name == "sqlite":
        rows.commit([entry], None, [(_row("s", "acme", "v", 10, 1.0), b"p")], SessionLimits())
        assert a._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # type: ignore[attr-defined] # FULL
        assert db_execute(data, "SELECT COUNT(*) FROM audit WHERE action = 'environment.open'") == [(1,)]
        return
    import psycopg

    flushed = 0
    with psycopg.connect(database_for(data), autocommit=True) as watch:
        for i in range(20):
            rows.commit([entry], None, [(_row(f"s{i}", "acme", f"v{i}", 10, 1.0 + i), b"p")], SessionLimits())
            flushed += watch.execute("SELECT pg_current_wal_flush_lsn() >= pg_current_wal_insert_lsn()").fetchone()[0]
    assert flushed >= 15, f"only {flushed} of 20 commits were flushed when they returned"
    assert db_execute(data, "SELECT COUNT(*) FROM audit WHERE action = 'environment.open'") == [(20,)]


def test_a_database_with_sessions_before_the_usage_rows_gets_them_right(tmp_path: Path,
                                                                        backend_name: str) -> None:
    # Migration 4 on a database that already holds sessions: the rows start from the tables.
    data = tmp_path / "data"
    store = open_store(data, database_for(data))
    rows = session_rows(store)
    for i in range(6):  # two sessions of each organisation share a value
        org = ("acme", "corp")[i % 2]
        rows.insert(_row(f"s{i}", org, f"{org}-{i // 4}", 700 + i, 1.0 + i), b"p", SessionLimits())
    want = _real_usage(data)
    store.close()
    # The schema as version 3 left it (the sessions kept).
    if backend_name == "postgres":
        db_execute(data, "DROP FUNCTION session_usage_follow() CASCADE")
    else:
        for name in ("session_in", "session_out", "value_in", "value_out"):
            db_execute(data, f"DROP TRIGGER session_usage_{name}")
    db_execute(data, "DROP TABLE session_usage")
    db_execute(data, "DELETE FROM schema_migrations WHERE version = 4")
    store = open_store(data, database_for(data))
    try:
        assert session_rows(store).usage() == want == {"acme": (3, 700 + 704), "corp": (3, 701 + 705)}
    finally:
        store.close()
