"""Open sessions kept in the database, so that every replica (or worker process) answers a read
of a session another one opened. Used when sessions are shared (PostgreSQL, ``--workers N``,
``--shared-sessions``: see :mod:`.session_store`); a single SQLite server keeps them in memory.

A session is two rows: ``sessions`` (the SHA-256 of its id, never the id; its organisation,
environment and expiry, wall-clock seconds) and ``session_values`` (the opened value,
pickled and encrypted with the server key: AES-GCM, so a row altered in the database fails to
open rather than unpickles). Sessions of one evaluation share one value row, as they share
one evaluation in memory. The bounds of :class:`~.sessions.SessionLimits` hold for the rows of
all replicas together, with the same rules as in memory (expired first, then the oldest of the
organisation most over its fair share; one value larger than an organisation's budget is
refused before this is reached). Making room and inserting is one transaction under a lock
(``BEGIN IMMEDIATE`` on SQLite, an advisory lock on PostgreSQL), so concurrent opens on
several replicas cannot overshoot. What each organisation holds is read from its row of
``session_usage``, which triggers keep equal to the tables on every insert and delete (not a
count of every session each time); expired sessions are deleted by the sweep every second,
and by a commit only when it needs their room. On PostgreSQL the group commit is two round
trips (a pipeline: see :meth:`commit`), and the lock is released before its WAL flush.

The replica that opened keeps the value in memory too (:class:`~.sessions.Sessions`, as a
cache); a read checks the row still exists (expired or evicted elsewhere: 404), and a replica
that does not hold the value reads, decrypts and unpacks the row once, then caches it.

Example::

    rows = session_rows(store)
    rows.insert(SessionRow(...), value_id, size, payload, limits)
    rows.find(sid_hash)          # (row, payload) or None
"""
from __future__ import annotations

import hashlib
import pickle
import time
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, Iterator, Sequence

from .sessions import SESSION_OVERHEAD, SessionLimits
from .store import AuditEntry
from .store.rows import AUDIT, SESSION_VALUES, SESSIONS, Table, insert_rows

__all__ = ["SessionRow", "SessionRows", "session_rows", "seal", "unseal", "id_hash"]

# The advisory lock every replica's writers of the session tables take (PostgreSQL).
_LOCK = 0x65736373657373  # "escsess"


def id_hash(sid: str) -> str:
    """What the database holds of a session id (the id itself is the capability to read it)."""
    return hashlib.sha256(sid.encode("ascii", "replace")).hexdigest()


def seal(encrypt: Callable[[bytes], bytes], packed: Any, diagnostics: Any, model: Any = None) -> bytes:
    """The encrypted payload of a value row: the packed value, its diagnostics and the parts of
    its detailed model (``{part: JSON bytes}``, see :attr:`.sessions.Evaluation.model`), so that
    a replica reading the row serves the whole Environment too."""
    return encrypt(pickle.dumps((packed, diagnostics, model), protocol=pickle.HIGHEST_PROTOCOL))


def unseal(decrypt: Callable[[bytes], bytes], payload: bytes) -> tuple[Any, Any, Any]:
    """``(packed value, diagnostics, model parts)`` of a payload (AES-GCM authenticated before
    unpickling). A row sealed before sessions kept their model has none: ``None``."""
    sealed = pickle.loads(decrypt(bytes(payload)))
    if len(sealed) == 2:  # the format before the model
        return sealed[0], sealed[1], None
    return sealed[0], sealed[1], sealed[2]


@dataclass(frozen=True)
class SessionRow:
    """What the database knows of a session, its value apart."""

    id_hash: str = field(repr=False)
    org: str
    project: str | None
    env: str | None
    environment: str
    created: float
    expires: float
    value_id: str = field(repr=False)
    size: int = 0

    @property
    def target(self) -> tuple[str, str] | None:
        return None if self.project is None else (self.project, self.env or "")


class SessionRows:
    """The session tables of one store (SQLite or PostgreSQL: the SQL is the same, written with
    ``?`` placeholders)."""

    def __init__(self, tx: Callable[[], ContextManager[Any]], conn: Callable[[], ContextManager[Any]],
                 postgres: bool, durable_tx: Callable[[], ContextManager[Any]] | None = None) -> None:
        self._tx_factory = tx
        self._conn_factory = conn
        self._postgres = postgres
        # The group commit's transaction: durable when it ends (see PostgresStore._durable_tx);
        # on SQLite a transaction is (synchronous=FULL).
        self._durable_tx_factory = durable_tx or tx

    @property
    def remote(self) -> bool:
        """Whether a query is a round trip to another server (PostgreSQL), to be made off the
        event loop; SQLite's are shorter than a hop to a thread."""
        return self._postgres

    def _q(self, sql: str) -> str:
        return sql.replace("?", "%s") if self._postgres else sql

    def _exec(self, db: Any, sql: str, args: tuple[Any, ...] = ()) -> Any:
        return db.execute(self._q(sql), args)

    def _rowcount(self, db: Any, sql: str, args: tuple[Any, ...] = ()) -> int:
        """How many rows ``sql`` changed. In a pipeline the count is known only once the
        statement's answer is in: a nested pipeline waits for it (a sync) when it ends."""
        if self._postgres:
            with db.pipeline():
                cur = self._exec(db, sql, args)
            return int(cur.rowcount)
        return int(self._exec(db, sql, args).rowcount)

    # -- writing ----------------------------------------------------------------------------

    def insert(self, row: SessionRow, payload: bytes, limits: SessionLimits, now: float | None = None) -> int:
        """Make room as the bounds say and insert ``row`` (with its value, unless a session of
        the same value exists); returns how many sessions were evicted."""
        with self._tx_factory() as db:
            return self._insert_many(db, [(row, payload)], limits, now)

    def commit(self, entries: Sequence[AuditEntry], token_uses: dict[str, str] | None,
               sessions: Sequence[tuple[SessionRow, bytes]], limits: SessionLimits) -> None:
        """One transaction holding audit entries, tokens' last-used times and new sessions: the
        audit writer's group commit, so that an open's entries and its session are durable
        together, with one commit (one fsync) for every open that arrived meanwhile."""
        with self._durable_tx_factory() as db:
            rows = [(e.time, e.org, e.actor, e.action, e.target, e.detail) for e in entries]
            if rows:
                self._insert(db, AUDIT, rows)
            if token_uses:
                self._many(db, "UPDATE tokens SET last_used=? WHERE hash=? AND (last_used IS NULL OR last_used < ?)",
                           [(t, h, t) for h, t in sorted(token_uses.items())])
            if sessions:
                self._insert_many(db, sessions, limits, None)

    def _many(self, db: Any, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if self._postgres:
            with db.cursor() as cur:
                cur.executemany(self._q(sql), rows)
        else:
            db.executemany(sql, rows)

    def _insert(self, db: Any, table: Table, rows: list[tuple[Any, ...]]) -> None:
        """Every row into ``table`` with one statement (store.rows.insert_rows)."""
        insert_rows(db, table, rows, postgres=self._postgres)

    def _insert_many(self, db: Any, items: Sequence[tuple[SessionRow, bytes]], limits: SessionLimits,
                     now: float | None) -> int:
        now = time.time() if now is None else now
        self._lock(db)
        usage, count, present = self._room(db, items)
        # Expired sessions go first when room must be made (as in memory); otherwise they wait
        # for the sweep (every second), which keeps the commit to the usage rows and the inserts.
        if not _fits(items, usage, count, present, limits) and self._delete_expired(db, now):
            usage, count, present = self._room(db, items)
        values: list[tuple[Any, ...]] = []
        sessions: list[tuple[Any, ...]] = []

        def flush() -> None:
            if values:
                self._insert(db, SESSION_VALUES, values)
            if sessions:
                self._insert(db, SESSIONS, sessions)
            values.clear()
            sessions.clear()

        def evict(org: str, keep: str) -> int:
            flush()  # what eviction looks at is in the table (rare: only over a bound)
            freed, gone = self._evict_oldest(db, org, keep)
            present.discard(gone)
            return freed

        evicted = 0
        for row, payload in items:
            shared = row.value_id in present
            cost = SESSION_OVERHEAD + (0 if shared else row.size)
            while usage.get(row.org) and usage[row.org] + cost > limits.org_bytes:
                usage[row.org] -= evict(row.org, row.value_id)
                count -= 1
                evicted += 1
                if usage[row.org] <= 0:
                    del usage[row.org]
            while count and (sum(usage.values()) + cost > limits.max_bytes or count >= limits.max_sessions):
                orgs = set(usage) | {row.org}
                share = limits.max_bytes / len(orgs)
                victim = max(usage, key=lambda o: usage[o] - share)
                usage[victim] -= evict(victim, row.value_id)
                count -= 1
                evicted += 1
                if usage[victim] <= 0:
                    del usage[victim]
            if not shared:
                values.append((row.value_id, row.org, row.size, payload))
                present.add(row.value_id)
            sessions.append((row.id_hash, row.org, row.project, row.env, row.environment, row.created, row.expires,
                             row.value_id))
            usage[row.org] = usage.get(row.org, 0) + cost
            count += 1
        flush()
        return evicted

    def _lock(self, db: Any) -> None:
        """Serialise the writers of the session tables until COMMIT: PostgreSQL's advisory lock
        (SQLite's ``BEGIN IMMEDIATE`` already holds the database's write lock). Taken after a
        batch's audit entries are written, so that only the usage read, the inserts and the
        commit wait for another process's batch."""
        if self._postgres:
            db.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))

    def _room(self, db: Any, items: Sequence[tuple[SessionRow, bytes]]) -> tuple[dict[str, int], int, set[str]]:
        """What every organisation's sessions hold (bytes, with each session's overhead), how
        many sessions there are, and which of ``items``' values exist already: from the usage
        rows the triggers keep (see .store.migrations, version 4), not a count of the sessions.
        Both queries are sent before either is read (one round trip in a pipeline)."""
        ids = sorted({row.value_id for row, _ in items})
        marks = ",".join("?" for _ in ids)
        used = self._exec(db, "SELECT org, sessions, bytes FROM session_usage WHERE sessions > 0")
        have = self._exec(db, f"SELECT id FROM session_values WHERE id IN ({marks})", tuple(ids))
        usage: dict[str, int] = {}
        count = 0
        for org, n, size in used.fetchall():
            usage[org] = int(n) * SESSION_OVERHEAD + int(size)
            count += int(n)
        return usage, count, {r[0] for r in have.fetchall()}

    def _evict_oldest(self, db: Any, org: str, keep: str) -> tuple[int, str | None]:
        """Delete ``org``'s oldest session (and its value when no other session holds it);
        returns the bytes given up and the id of the value deleted (None: none was)."""
        if self._postgres:
            return self._evict_oldest_pg(db, org, keep)
        victim = self._exec(db, "SELECT id_hash, value_id FROM sessions WHERE org=? ORDER BY created, id_hash "
                                "LIMIT 1", (org,)).fetchone()
        if victim is None:
            return 0, None
        self._exec(db, "DELETE FROM sessions WHERE id_hash=?", (victim[0],))
        freed = SESSION_OVERHEAD
        # The value goes with its last session, unless it is the one about to be inserted again.
        if victim[1] != keep and not self._exec(db, "SELECT 1 FROM sessions WHERE value_id=? LIMIT 1",
                                                (victim[1],)).fetchone():
            size = self._exec(db, "SELECT size FROM session_values WHERE id=?", (victim[1],)).fetchone()
            self._exec(db, "DELETE FROM session_values WHERE id=?", (victim[1],))
            return freed + (int(size[0]) if size else 0), victim[1]
        return freed, None

    # One statement (one round trip: a server at its bound evicts a session for every open, under
    # the lock). Its parts see one snapshot, in which the victim is not yet deleted: the value
    # goes when no session but the victim holds it.
    _EVICT_PG = """
        WITH victim AS (
            DELETE FROM sessions WHERE id_hash = (
                SELECT id_hash FROM sessions WHERE org = %s ORDER BY created, id_hash LIMIT 1)
            RETURNING id_hash, value_id
        ), gone AS (
            DELETE FROM session_values v USING victim
            WHERE v.id = victim.value_id AND v.id <> %s
              AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.value_id = v.id AND s.id_hash <> victim.id_hash)
            RETURNING v.id, v.size
        )
        SELECT (SELECT COUNT(*) FROM victim), (SELECT id FROM gone), (SELECT size FROM gone)"""

    def _evict_oldest_pg(self, db: Any, org: str, keep: str) -> tuple[int, str | None]:
        found, gone, size = db.execute(self._EVICT_PG, (org, keep)).fetchone()
        if not found:
            return 0, None
        return SESSION_OVERHEAD + (int(size) if gone is not None else 0), gone

    def _delete_expired(self, db: Any, now: float) -> int:
        """Delete the expired sessions and the values they leave unheld (the caller holds the
        lock: a value must not go while a batch adds a session to it)."""
        n = self._rowcount(db, "DELETE FROM sessions WHERE expires <= ?", (now,))
        if n:
            self._exec(db, "DELETE FROM session_values WHERE NOT EXISTS "
                           "(SELECT 1 FROM sessions s WHERE s.value_id = session_values.id)")
        return max(n, 0)

    def sweep(self, now: float | None = None) -> int:
        """Delete expired sessions and the values no session holds; returns how many went."""
        now = time.time() if now is None else now
        with self._conn_factory() as db:  # a read first: no write transaction when none expired
            if self._exec(db, "SELECT 1 FROM sessions WHERE expires <= ? LIMIT 1", (now,)).fetchone() is None:
                return 0
        with self._tx_factory() as db:
            self._lock(db)
            return self._delete_expired(db, now)

    # -- reading ----------------------------------------------------------------------------

    _FIELDS = "s.id_hash, s.org, s.project, s.env, s.environment, s.created, s.expires, s.value_id, v.size"

    def get(self, sid_hash: str) -> SessionRow | None:
        """The session's row, if it exists (expired or not: the caller says which)."""
        with self._conn_factory() as db:
            r = self._exec(db, f"SELECT {self._FIELDS} FROM sessions s JOIN session_values v ON v.id = s.value_id "
                               "WHERE s.id_hash=?", (sid_hash,)).fetchone()
        return None if r is None else SessionRow(*r[:8], size=int(r[8]))

    def payload(self, value_id: str) -> bytes | None:
        with self._conn_factory() as db:
            r = self._exec(db, "SELECT payload FROM session_values WHERE id=?", (value_id,)).fetchone()
        return None if r is None else bytes(r[0])

    def count(self) -> int:
        with self._conn_factory() as db:
            return int(self._exec(db, "SELECT COUNT(*) FROM sessions").fetchone()[0])

    def usage(self) -> dict[str, tuple[int, int]]:
        """``{org: (sessions, bytes of their values)}`` as the usage rows hold them (expired
        sessions not yet swept included)."""
        with self._conn_factory() as db:
            rows = self._exec(db, "SELECT org, sessions, bytes FROM session_usage "
                                  "WHERE sessions > 0 OR bytes > 0").fetchall()
        return {org: (int(n), int(size)) for org, n, size in rows}


def _fits(items: Sequence[tuple[SessionRow, bytes]], usage: dict[str, int], count: int, present: set[str],
          limits: SessionLimits) -> bool:
    """Whether every item fits the bounds as they are, no session evicted (the common case:
    the expired sessions then need not be looked for)."""
    usage = dict(usage)
    present = set(present)
    total = sum(usage.values())
    for row, _ in items:
        cost = SESSION_OVERHEAD + (0 if row.value_id in present else row.size)
        if usage.get(row.org) and usage[row.org] + cost > limits.org_bytes:
            return False
        if count and (total + cost > limits.max_bytes or count >= limits.max_sessions):
            return False
        present.add(row.value_id)
        usage[row.org] = usage.get(row.org, 0) + cost
        total += cost
        count += 1
    return True


def session_rows(store: Any) -> SessionRows:
    """The :class:`SessionRows` of a :class:`~.store.SQLiteStore` or :class:`~.store.postgres.PostgresStore`."""
    from .store import SQLiteStore

    if isinstance(store, SQLiteStore):
        import contextlib

        @contextlib.contextmanager
        def tx() -> Iterator[Any]:
            with store._tx():
                yield store._db

        @contextlib.contextmanager
        def conn() -> Iterator[Any]:
            with store._lock:
                yield store._db

        return SessionRows(tx, conn, postgres=False)
    return SessionRows(store._pipeline_tx, store._conn, postgres=True, durable_tx=store._durable_tx)
