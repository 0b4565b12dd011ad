"""Versioned schema migrations for both stores, applied on start under a lock.

Each :class:`Migration` has a version, a name and what to run on SQLite and on PostgreSQL.
The applied versions are recorded in ``schema_migrations``; a store applies the missing ones
in order when it opens, holding a lock for the whole run so that two replicas (or two worker
processes) starting together do not both apply one: ``BEGIN IMMEDIATE`` on SQLite (the
database's write lock), ``pg_advisory_lock`` on PostgreSQL. The other starter waits, then
finds the versions recorded and applies nothing.

Version 1 is the schema as it was before migrations were versioned; on SQLite it is written
with ``IF NOT EXISTS`` and the later token columns are added only when missing, so a database
made by an earlier release is taken over as it is.

``esc-pulumi serve migrate --check`` lists what :func:`pending` returns (exit 1 when
something is pending) for deploy pipelines that migrate in a step of their own.

Example::

    apply_sqlite(sqlite3.connect("esc.db", isolation_level=None))     # [1, 2]: what it applied
    pending_postgres(conn)                                            # [] once up to date
"""
from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

__all__ = ["Migration", "SQLITE", "POSTGRES", "apply_sqlite", "apply_postgres", "pending_sqlite",
           "pending_postgres", "LATEST_VERSION"]

# Any fixed 64-bit number, the same in every replica: the advisory lock migrations hold.
ADVISORY_LOCK = 0x65736370756C756D  # "escpulum"


@dataclass(frozen=True)
class Migration:
    """One step of the schema: ``run(cursor)`` within the migrating transaction."""

    version: int
    name: str
    run: Callable[[Any], None]


def _statements(script: str) -> Callable[[Any], None]:
    def run(cur: Any) -> None:
        for stmt in script.split(";"):
            if stmt.strip():
                cur.execute(stmt)
    return run


def _each(*statements: str) -> Callable[[Any], None]:
    """Statements run one by one as written (trigger bodies hold semicolons of their own)."""
    def run(cur: Any) -> None:
        for stmt in statements:
            cur.execute(stmt)
    return run


_SQLITE_BASE = """
CREATE TABLE IF NOT EXISTS environments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org TEXT NOT NULL, project TEXT NOT NULL, name TEXT NOT NULL,
    created TEXT NOT NULL, modified TEXT NOT NULL,
    UNIQUE (org, project, name)
);
CREATE TABLE IF NOT EXISTS revisions (
    env_id INTEGER NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    yaml TEXT NOT NULL,
    created TEXT NOT NULL, creator TEXT NOT NULL,
    PRIMARY KEY (env_id, number)
);
CREATE TABLE IF NOT EXISTS revision_tags (
    env_id INTEGER NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    name TEXT NOT NULL, revision INTEGER NOT NULL,
    created TEXT NOT NULL, modified TEXT NOT NULL, editor TEXT NOT NULL,
    PRIMARY KEY (env_id, name)
);
CREATE TABLE IF NOT EXISTS env_tags (
    env_id INTEGER NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    name TEXT NOT NULL, value TEXT NOT NULL,
    created TEXT NOT NULL, modified TEXT NOT NULL, editor TEXT NOT NULL,
    PRIMARY KEY (env_id, name)
);
CREATE TABLE IF NOT EXISTS tokens (
    hash TEXT PRIMARY KEY, org TEXT NOT NULL, role TEXT NOT NULL, name TEXT NOT NULL, created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL, org TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
    target TEXT NOT NULL, detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_time ON audit (time, id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)
"""


def _sqlite_base(cur: Any) -> None:
    _statements(_SQLITE_BASE)(cur)
    # Columns an earlier release added in place: only those still missing.
    have = {row[1] for row in cur.execute("PRAGMA table_info(tokens)")}
    for name in ("expires", "last_used", "revoked"):
        if name not in have:
            cur.execute(f"ALTER TABLE tokens ADD COLUMN {name} TEXT")


# Open sessions, shared by every process of the server: the value is encrypted (``payload``),
# the id is stored as its SHA-256 only (it is the capability to read the session).
_SQLITE_SESSIONS = """
CREATE TABLE session_values (
    id TEXT PRIMARY KEY, org TEXT NOT NULL, size INTEGER NOT NULL, payload BLOB NOT NULL
);
CREATE INDEX session_values_org ON session_values (org);
CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY, org TEXT NOT NULL, project TEXT, env TEXT,
    environment TEXT NOT NULL, created REAL NOT NULL, expires REAL NOT NULL,
    value_id TEXT NOT NULL REFERENCES session_values(id)
);
CREATE INDEX sessions_expires ON sessions (expires);
CREATE INDEX sessions_org ON sessions (org, created);
CREATE INDEX sessions_value ON sessions (value_id)
"""

# Per-organisation data keys, wrapped by the server key. IF NOT EXISTS: the release that brought
# them created the table before migrations were versioned.
_SQLITE_ORG_KEYS = "CREATE TABLE IF NOT EXISTS org_keys (org TEXT PRIMARY KEY, wrapped BLOB NOT NULL, created TEXT NOT NULL)"

# What each organisation's open sessions hold (their number; the sizes of their values), kept
# by triggers on every insert and delete of the session tables, whoever makes it: a group
# commit reads these few rows instead of counting every session (see .shared_sessions). The
# rows start from what the tables hold when the migration runs. Session and value rows are
# only ever inserted and deleted (never updated), so these two events are the whole story.
_USAGE_BACKFILL = """
INSERT INTO session_usage (org, sessions, bytes)
SELECT org, SUM(n), SUM(b) FROM (
    SELECT org, COUNT(*) AS n, 0 AS b FROM sessions GROUP BY org
    UNION ALL SELECT org, 0 AS n, SUM(size) AS b FROM session_values GROUP BY org
) AS t GROUP BY org
"""

_SQLITE_USAGE = _each(
    "CREATE TABLE session_usage (org TEXT PRIMARY KEY, sessions INTEGER NOT NULL, bytes INTEGER NOT NULL)",
    _USAGE_BACKFILL,
    "CREATE TRIGGER session_usage_session_in AFTER INSERT ON sessions BEGIN "
    "INSERT INTO session_usage (org, sessions, bytes) VALUES (NEW.org, 1, 0) "
    "ON CONFLICT (org) DO UPDATE SET sessions = sessions + 1; END",
    "CREATE TRIGGER session_usage_session_out AFTER DELETE ON sessions BEGIN "
    "UPDATE session_usage SET sessions = sessions - 1 WHERE org = OLD.org; END",
    "CREATE TRIGGER session_usage_value_in AFTER INSERT ON session_values BEGIN "
    "INSERT INTO session_usage (org, sessions, bytes) VALUES (NEW.org, 0, NEW.size) "
    "ON CONFLICT (org) DO UPDATE SET bytes = bytes + excluded.bytes; END",
    "CREATE TRIGGER session_usage_value_out AFTER DELETE ON session_values BEGIN "
    "UPDATE session_usage SET bytes = bytes - OLD.size WHERE org = OLD.org; END",
)

SQLITE: tuple[Migration, ...] = (
    Migration(1, "environments, revisions, tags, tokens, audit, meta", _sqlite_base),
    Migration(2, "open sessions", _statements(_SQLITE_SESSIONS)),
    Migration(3, "organisation data keys", _statements(_SQLITE_ORG_KEYS)),
    Migration(4, "open sessions' usage per organisation", _SQLITE_USAGE),
)

# COLLATE "C": names compare and sort by code point, as on SQLite, whatever the database's locale
# (pages continue where the last one stopped).
_POSTGRES_BASE = """
CREATE TABLE environments (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    org TEXT COLLATE "C" NOT NULL, project TEXT COLLATE "C" NOT NULL, name TEXT COLLATE "C" NOT NULL,
    created TEXT COLLATE "C" NOT NULL, modified TEXT COLLATE "C" NOT NULL,
    UNIQUE (org, project, name)
);
CREATE TABLE revisions (
    env_id BIGINT NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    number BIGINT NOT NULL,
    yaml TEXT COLLATE "C" NOT NULL,
    created TEXT COLLATE "C" NOT NULL, creator TEXT COLLATE "C" NOT NULL,
    seq BIGINT GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (env_id, number)
);
CREATE TABLE revision_tags (
    env_id BIGINT NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    name TEXT COLLATE "C" NOT NULL, revision BIGINT NOT NULL,
    created TEXT COLLATE "C" NOT NULL, modified TEXT COLLATE "C" NOT NULL, editor TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (env_id, name)
);
CREATE TABLE env_tags (
    env_id BIGINT NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    name TEXT COLLATE "C" NOT NULL, value TEXT COLLATE "C" NOT NULL,
    created TEXT COLLATE "C" NOT NULL, modified TEXT COLLATE "C" NOT NULL, editor TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (env_id, name)
);
CREATE TABLE tokens (
    hash TEXT COLLATE "C" PRIMARY KEY, org TEXT COLLATE "C" NOT NULL, role TEXT COLLATE "C" NOT NULL, name TEXT COLLATE "C" NOT NULL, created TEXT COLLATE "C" NOT NULL,
    expires TEXT COLLATE "C", last_used TEXT COLLATE "C", revoked TEXT COLLATE "C",
    seq BIGINT GENERATED ALWAYS AS IDENTITY
);
CREATE TABLE audit (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time TEXT COLLATE "C" NOT NULL, org TEXT COLLATE "C" NOT NULL, actor TEXT COLLATE "C" NOT NULL, action TEXT COLLATE "C" NOT NULL,
    target TEXT COLLATE "C" NOT NULL, detail TEXT COLLATE "C" NOT NULL
);
CREATE INDEX audit_time ON audit (time, id);
CREATE TABLE meta (key TEXT COLLATE "C" PRIMARY KEY, value TEXT COLLATE "C" NOT NULL)
"""

_POSTGRES_SESSIONS = """
CREATE TABLE session_values (
    id TEXT COLLATE "C" PRIMARY KEY, org TEXT COLLATE "C" NOT NULL, size BIGINT NOT NULL, payload BYTEA NOT NULL
);
CREATE INDEX session_values_org ON session_values (org);
CREATE TABLE sessions (
    id_hash TEXT COLLATE "C" PRIMARY KEY, org TEXT COLLATE "C" NOT NULL, project TEXT, env TEXT,
    environment TEXT NOT NULL, created DOUBLE PRECISION NOT NULL, expires DOUBLE PRECISION NOT NULL,
    value_id TEXT COLLATE "C" NOT NULL REFERENCES session_values(id)
);
CREATE INDEX sessions_expires ON sessions (expires);
CREATE INDEX sessions_org ON sessions (org, created);
CREATE INDEX sessions_value ON sessions (value_id)
"""

_POSTGRES_ORG_KEYS = ('CREATE TABLE org_keys (org TEXT COLLATE "C" PRIMARY KEY, wrapped BYTEA NOT NULL, '
                      'created TEXT NOT NULL)')

# One function for the four triggers: statement-level, so that a group commit's many rows
# update each organisation's row once. ORDER BY org: concurrent statements lock the rows in
# one order (the session writers also hold an advisory lock first: see .shared_sessions).
_POSTGRES_USAGE_FUNCTION = """
CREATE FUNCTION session_usage_follow() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    sign BIGINT := CASE TG_OP WHEN 'INSERT' THEN 1 ELSE -1 END;
BEGIN
    IF TG_TABLE_NAME = 'sessions' THEN
        INSERT INTO session_usage AS u (org, sessions, bytes)
        SELECT org, sign * COUNT(*), 0 FROM changed GROUP BY org ORDER BY org
        ON CONFLICT (org) DO UPDATE SET sessions = u.sessions + excluded.sessions;
    ELSE
        INSERT INTO session_usage AS u (org, sessions, bytes)
        SELECT org, 0, sign * SUM(size) FROM changed GROUP BY org ORDER BY org
        ON CONFLICT (org) DO UPDATE SET bytes = u.bytes + excluded.bytes;
    END IF;
    RETURN NULL;
END
$$
"""

_POSTGRES_USAGE = _each(
    'CREATE TABLE session_usage (org TEXT COLLATE "C" PRIMARY KEY, sessions BIGINT NOT NULL, bytes BIGINT NOT NULL)',
    _USAGE_BACKFILL,
    _POSTGRES_USAGE_FUNCTION,
    *(f"CREATE TRIGGER session_usage_{table}_{event[:3].lower()} AFTER {event} ON {table} "
      f"REFERENCING {'NEW' if event == 'INSERT' else 'OLD'} TABLE AS changed "
      "FOR EACH STATEMENT EXECUTE FUNCTION session_usage_follow()"
      for table in ("sessions", "session_values") for event in ("INSERT", "DELETE")),
)

POSTGRES: tuple[Migration, ...] = (
    Migration(1, "environments, revisions, tags, tokens, audit, meta", _statements(_POSTGRES_BASE)),
    Migration(2, "open sessions", _statements(_POSTGRES_SESSIONS)),
    Migration(3, "organisation data keys", _statements(_POSTGRES_ORG_KEYS)),
    Migration(4, "open sessions' usage per organisation", _POSTGRES_USAGE),
)

LATEST_VERSION = max(m.version for m in SQLITE)
assert LATEST_VERSION == max(m.version for m in POSTGRES), "both stores have every version"

_VERSIONS_TABLE = ("CREATE TABLE IF NOT EXISTS schema_migrations "
                   "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied TEXT NOT NULL)")


class SchemaTooNew(Exception):
    """The database was migrated by a newer release than this one."""


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _todo(applied: set[int], steps: Sequence[Migration]) -> list[Migration]:
    newest = max(applied, default=0)
    if newest > LATEST_VERSION:
        raise SchemaTooNew(f"the database's schema is version {newest}, newer than this release knows "
                           f"({LATEST_VERSION}): run the release that migrated it, or a newer one")
    return [m for m in steps if m.version not in applied]


# -- SQLite ---------------------------------------------------------------------------------------


def _sqlite_applied(db: sqlite3.Connection) -> set[int]:
    if db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='schema_migrations'").fetchone() is None:
        return set()
    return {int(r[0]) for r in db.execute("SELECT version FROM schema_migrations")}


def pending_sqlite(db: sqlite3.Connection) -> list[Migration]:
    """The migrations a SQLite database still needs (read only)."""
    return _todo(_sqlite_applied(db), SQLITE)


def apply_sqlite(db: sqlite3.Connection) -> list[int]:
    """Apply the missing migrations in one ``BEGIN IMMEDIATE`` transaction (``db`` must be in
    autocommit mode: ``isolation_level=None``); returns the versions applied."""
    if not pending_sqlite(db):  # the common case: no write lock taken at all
        return []
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute(_VERSIONS_TABLE)
        todo = pending_sqlite(db)  # another process may have migrated meanwhile
        for m in todo:
            m.run(db)
            db.execute("INSERT INTO schema_migrations (version, name, applied) VALUES (?,?,?)",
                       (m.version, m.name, _now()))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return [m.version for m in todo]


# -- PostgreSQL -----------------------------------------------------------------------------------


def _postgres_applied(conn: Any) -> set[int]:
    row = conn.execute("SELECT to_regclass('schema_migrations')").fetchone()
    if row is None or row[0] is None:
        return set()
    return {int(r[0]) for r in conn.execute("SELECT version FROM schema_migrations")}


def pending_postgres(conn: Any) -> list[Migration]:
    """The migrations a PostgreSQL database still needs (read only; ``conn`` in autocommit)."""
    return _todo(_postgres_applied(conn), POSTGRES)


def apply_postgres(conn: Any) -> list[int]:
    """Apply the missing migrations, each in a transaction of its own, holding the advisory
    lock throughout (``conn``: a psycopg connection in autocommit mode); returns the versions
    applied."""
    if not pending_postgres(conn):
        return []
    conn.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK,))
    done: list[int] = []
    try:
        conn.execute(_VERSIONS_TABLE)
        for m in _todo(_postgres_applied(conn), POSTGRES):  # another replica may have migrated meanwhile
            with conn.transaction():
                m.run(conn)
                conn.execute("INSERT INTO schema_migrations (version, name, applied) VALUES (%s,%s,%s)",
                             (m.version, m.name, _now()))
            done.append(m.version)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK,))
    return done
