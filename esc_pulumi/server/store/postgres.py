"""The PostgreSQL implementation of the :class:`~.base.Store` protocol, for several replicas.

psycopg 3 with a connection pool (``psycopg_pool``); every method is one transaction on a
connection of the pool. Writes to one environment lock its row (``SELECT ... FOR UPDATE``)
before reading the head revision, so concurrent writers on different replicas queue in the
database: revision numbers stay dense, ``(env_id, number)`` is the primary key, and an
``If-Match`` is compared with the head while the row is locked (no read-then-write race).

When PostgreSQL is away, a method raises :class:`~.base.Unavailable` (the server answers 503);
the pool checks a connection before lending it and opens new ones as the server comes back.

Example::

    store = PostgresStore("postgresql://esc@db.internal/esc")
    rev = store.create_environment("acme", "default", "dev", "values: {}\\n", actor="ci")
    store.update_environment("acme", "default", "dev", "values: {a: 1}\\n", actor="ci", if_match=rev.etag)
"""
from __future__ import annotations

import contextlib
import logging
import re
import time
from typing import Any, Callable, Iterable, Iterator, Sequence

from .base import (
    audit_query,
    LATEST,
    AuditEntry,
    Conflict,
    EnvironmentInfo,
    EnvTag,
    Invalid,
    NotFound,
    Revision,
    RevisionTag,
    TokenRecord,
    Unavailable,
    now_iso,
)
from . import migrations
from .rows import AUDIT, insert_rows

__all__ = ["PostgresStore", "redact_url", "is_postgres_url"]

log = logging.getLogger("esc_pulumi.server")

_TOKEN_FIELDS = "hash, org, role, name, created, expires, last_used, revoked"


def is_postgres_url(database: str | None) -> bool:
    return bool(database) and database.split(":", 1)[0] in ("postgresql", "postgres")  # type: ignore[union-attr]


def redact_url(url: str) -> str:
    """``url`` without its password (for messages and logs)."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


def _import() -> tuple[Any, Any]:
    try:
        import psycopg
        import psycopg_pool
    except ImportError:
        from ...errors import EscError

        raise EscError("--database postgresql://... needs psycopg: pip install 'esc_pulumi[postgres]'") from None
    return psycopg, psycopg_pool


class PostgresStore:
    """:class:`Store` on a PostgreSQL database. Thread-safe (a pool of connections).

    ``migrate``: apply missing schema migrations on open (under the advisory lock); False
    only checks that the schema is current (:class:`~esc_pulumi.errors.EscError` if not);
    None leaves the schema alone (``serve migrate --check``).
    """

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 8, timeout: float = 5.0,
                 migrate: bool | None = True) -> None:
        psycopg, psycopg_pool = _import()
        self._psycopg = psycopg
        self.url = url
        self.shown = redact_url(url)
        self.warnings: list[str] = []
        self._timeout = timeout
        self._used: dict[int, float] = {}  # id(connection) -> when it last answered
        self._pool_cls = psycopg_pool.ConnectionPool
        self._pool = psycopg_pool.ConnectionPool(
            url, min_size=min_size, max_size=max_size, timeout=timeout, open=False,
            kwargs={"autocommit": True, "connect_timeout": max(1, int(timeout))},
            # A connection that died with the server is found out before it is lent (one idle for
            # a while: under load the check would cost a round trip per request).
            check=self._check,
            reconnect_timeout=float("inf"), name="esc-pulumi",
        )
        from ...errors import EscError

        # The first connection directly, not through the pool: an unreachable database is then
        # one clear error (the pool would retry and log each attempt).
        try:
            conn = psycopg.connect(url, autocommit=True, connect_timeout=max(1, int(timeout)))
        except psycopg.Error as e:
            raise EscError(f"cannot reach PostgreSQL at {self.shown}: {_reason(e)}") from None
        try:
            if migrate:
                migrations.apply_postgres(conn)
            elif migrate is False:
                todo = migrations.pending_postgres(conn)
                if todo:
                    raise EscError(f"the database {self.shown} needs schema migrations "
                                   f"{', '.join(str(m.version) for m in todo)}: run 'esc-pulumi serve migrate'")
        except migrations.SchemaTooNew as e:
            raise EscError(str(e)) from None
        except psycopg.OperationalError as e:
            raise EscError(f"cannot reach PostgreSQL at {self.shown}: {_reason(e)}") from None
        finally:
            conn.close()
        self._pool.open(wait=False)

    def close(self) -> None:
        self._pool.close()

    _IDLE_CHECK = 1.0  # seconds a connection may sit unused before it is checked when lent

    def _check(self, conn: Any) -> None:
        if time.monotonic() - self._used.get(id(conn), 0.0) >= self._IDLE_CHECK:
            self._pool_cls.check_connection(conn)

    # -- plumbing ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _conn(self) -> Iterator[Any]:
        """A pooled connection; connection failures become :class:`Unavailable`."""
        psycopg = self._psycopg
        from psycopg_pool import PoolTimeout

        try:
            with self._pool.connection() as conn:
                yield conn
                self._used[id(conn)] = time.monotonic()
        except PoolTimeout:
            raise Unavailable("it does not answer: try again shortly") from None
        except psycopg.OperationalError as e:
            # The reason (host, port) is the operator's, in the log; the client is told to retry.
            log.warning("PostgreSQL at %s: %s", self.shown, _reason(e))
            raise Unavailable("the connection to it failed: try again shortly") from None
        except psycopg.DataError:
            raise Invalid("the request holds a value the database cannot store (a NUL character?)") from None

    @contextlib.contextmanager
    def _tx(self) -> Iterator[Any]:
        with self._conn() as conn:
            with conn.transaction():
                yield conn

    @contextlib.contextmanager
    def _pipeline_tx(self) -> Iterator[Any]:
        """A transaction in pipeline mode: statements go out without waiting for each answer,
        and the client waits only where it reads a result and at COMMIT, so a transaction of
        many statements costs a round trip per read, plus one (the group commit: see
        .shared_sessions)."""
        with self._conn() as conn:
            with conn.pipeline():
                with conn.transaction():
                    yield conn

    @contextlib.contextmanager
    def _durable_tx(self) -> Iterator[Any]:
        """A pipelined transaction (:meth:`_pipeline_tx`) that is on disk when this returns,
        but whose locks are released before its WAL is flushed. It commits with
        ``synchronous_commit = off``; a second transaction follows in the pipeline and commits
        synchronously. That one must write a WAL record of its own, or PostgreSQL commits it
        without a flush too (a transaction id alone is not enough): a transactional logical
        message (read by nobody; any role may write one). Its commit record comes after the
        first's in the WAL, so once it returns both are flushed. Meanwhile another process's
        transaction, waiting for a lock the first held (the session writers' advisory lock),
        goes ahead, and the two flushes can be one (PostgreSQL's group commit) instead of one
        after the other. No round trip is added."""
        with self._conn() as conn:
            with conn.pipeline():
                with conn.transaction():
                    conn.execute("SET LOCAL synchronous_commit = off")
                    yield conn
                conn.execute("SELECT pg_logical_emit_message(true, 'esc-pulumi', 'flush')")

    def ping(self) -> None:
        """:class:`Unavailable` unless the database answers (``/readyz``)."""
        with self._conn() as conn:
            conn.execute("SELECT 1").fetchone()

    @staticmethod
    def _env(conn: Any, org: str, project: str, name: str, lock: bool = False) -> EnvironmentInfo:
        row = conn.execute(
            "SELECT id, org, project, name, created, modified FROM environments WHERE org=%s AND project=%s "
            "AND name=%s" + (" FOR UPDATE" if lock else ""),
            (org, project, name),
        ).fetchone()
        if row is None:
            raise NotFound(f"environment {project}/{name} not found")
        return EnvironmentInfo(*row)

    @staticmethod
    def _head(conn: Any, env_id: int) -> int:
        row = conn.execute("SELECT MAX(number) FROM revisions WHERE env_id=%s", (env_id,)).fetchone()
        return int(row[0] or 0)

    def _resolve(self, conn: Any, env: EnvironmentInfo, version: str | int | None) -> int:
        if version is None or version == LATEST:
            return self._head(conn, env.id)
        if isinstance(version, int) or (isinstance(version, str) and version.isascii() and version.isdigit()):
            number = int(version)
            if 0 < number < 2**62 and conn.execute(
                "SELECT 1 FROM revisions WHERE env_id=%s AND number=%s", (env.id, number)
            ).fetchone():
                return number
            raise NotFound(f"revision {number} of {env.project}/{env.name} not found")
        row = conn.execute(
            "SELECT revision FROM revision_tags WHERE env_id=%s AND name=%s", (env.id, version)
        ).fetchone()
        if row is None:
            raise NotFound(f"tag {version!r} of {env.project}/{env.name} not found")
        return int(row[0])

    @staticmethod
    def _tags_by_revision(conn: Any, env_id: int) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for name, rev in conn.execute(
            "SELECT name, revision FROM revision_tags WHERE env_id=%s ORDER BY name", (env_id,)
        ):
            out.setdefault(int(rev), []).append(name)
        return out

    @staticmethod
    def _audit(conn: Any, entries: Iterable[AuditEntry]) -> None:
        insert_rows(conn, AUDIT, [(e.time, e.org, e.actor, e.action, e.target, e.detail) for e in entries], postgres=True)

    @staticmethod
    def _exists(conn: Any, org: str, project: str, name: str) -> bool:
        return conn.execute("SELECT 1 FROM environments WHERE org=%s AND project=%s AND name=%s",
                            (org, project, name)).fetchone() is not None

    def _insert_env(self, conn: Any, org: str, project: str, name: str, now: str) -> int:
        # ON CONFLICT: two replicas creating one name at once; the second is told it exists.
        row = conn.execute(
            "INSERT INTO environments (org, project, name, created, modified) VALUES (%s,%s,%s,%s,%s) "
            "ON CONFLICT (org, project, name) DO NOTHING RETURNING id",
            (org, project, name, now, now),
        ).fetchone()
        if row is None:
            raise Conflict(f"environment {project}/{name} already exists")
        return int(row[0])

    # -- environments -------------------------------------------------------------------------

    def list_environments(self, org: str, after: tuple[str, str] | None, limit: int) -> list[EnvironmentInfo]:
        a = after or ("", "")
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT id, org, project, name, created, modified FROM environments "
                "WHERE org=%s AND (project > %s OR (project = %s AND name > %s)) "
                'ORDER BY project COLLATE "C", name COLLATE "C" LIMIT %s',
                (org, a[0], a[0], a[1], limit),
            ).fetchall()
        return [EnvironmentInfo(*r) for r in rows]

    def get_environment(self, org: str, project: str, name: str) -> EnvironmentInfo:
        with self._conn() as conn:
            return self._env(conn, org, project, name)

    def create_environment(self, org: str, project: str, name: str, yaml: str, actor: str) -> Revision:
        now = now_iso()
        with self._tx() as conn:
            env_id = self._insert_env(conn, org, project, name, now)
            conn.execute("INSERT INTO revisions (env_id, number, yaml, created, creator) VALUES (%s,1,%s,%s,%s)",
                         (env_id, yaml, now, actor))
            self._audit(conn, [AuditEntry(now, org, actor, "environment.create", f"{project}/{name}", "revision 1")])
        return Revision(env_id, 1, yaml, now, actor)

    def clone_environment(
        self, org: str, project: str, name: str, dest_project: str, dest_name: str, actor: str,
        *, history: bool, env_tags: bool, revision_tags: bool, reseal: Callable[[str], str] | None = None,
    ) -> Revision:
        now = now_iso()
        with self._tx() as conn:
            src = self._env(conn, org, project, name, lock=True)  # no new revision while copying
            dest = self._insert_env(conn, org, dest_project, dest_name, now)
            head = self._head(conn, src.id)
            if history:
                conn.execute(
                    "INSERT INTO revisions (env_id, number, yaml, created, creator) "
                    "SELECT %s, number, yaml, created, creator FROM revisions WHERE env_id=%s ORDER BY number",
                    (dest, src.id))
                number = head
                if revision_tags:
                    conn.execute(
                        "INSERT INTO revision_tags (env_id, name, revision, created, modified, editor) "
                        "SELECT %s, name, revision, created, modified, editor FROM revision_tags WHERE env_id=%s",
                        (dest, src.id))
            else:
                conn.execute(
                    "INSERT INTO revisions (env_id, number, yaml, created, creator) "
                    "SELECT %s, 1, yaml, %s, %s FROM revisions WHERE env_id=%s AND number=%s",
                    (dest, now, actor, src.id, head))
                number = 1
                if revision_tags:
                    conn.execute(
                        "INSERT INTO revision_tags (env_id, name, revision, created, modified, editor) "
                        "SELECT %s, name, 1, %s, %s, %s FROM revision_tags WHERE env_id=%s AND revision=%s",
                        (dest, now, now, actor, src.id, head))
            if env_tags:
                conn.execute(
                    "INSERT INTO env_tags (env_id, name, value, created, modified, editor) "
                    "SELECT %s, name, value, created, modified, editor FROM env_tags WHERE env_id=%s",
                    (dest, src.id))
            if reseal is not None:
                # Ciphertexts are bound to their environment: re-encrypted for the copy's (a
                # DecryptionError rolls the whole clone back).
                for n, text in conn.execute("SELECT number, yaml FROM revisions WHERE env_id=%s", (dest,)).fetchall():
                    new = reseal(text)
                    if new != text:
                        conn.execute("UPDATE revisions SET yaml=%s WHERE env_id=%s AND number=%s", (new, dest, n))
            yaml = conn.execute("SELECT yaml FROM revisions WHERE env_id=%s AND number=%s",
                                (dest, number)).fetchone()[0]
            self._audit(conn, [AuditEntry(now, org, actor, "environment.clone", f"{dest_project}/{dest_name}",
                                          f"from {project}/{name}")])
        return Revision(dest, number, yaml, now, actor)

    def update_environment(
        self, org: str, project: str, name: str, yaml: str, actor: str, if_match: str | None = None
    ) -> Revision:
        now = now_iso()
        with self._tx() as conn:
            # The row lock orders concurrent writers: the head read below is the newest committed.
            env = self._env(conn, org, project, name, lock=True)
            head = self._head(conn, env.id)
            if if_match is not None and if_match.strip() != "*":
                current = Revision(env.id, head, "", "", "").etag
                wanted = {t.strip().removeprefix("W/") for t in if_match.split(",")}
                if current not in wanted and current.strip('"') not in wanted:
                    raise Conflict(f"environment {project}/{name} has changed (now at revision {head}): If-Match is stale")
            number = head + 1
            conn.execute("INSERT INTO revisions (env_id, number, yaml, created, creator) VALUES (%s,%s,%s,%s,%s)",
                         (env.id, number, yaml, now, actor))
            conn.execute("UPDATE environments SET modified=%s WHERE id=%s", (now, env.id))
            self._audit(conn, [AuditEntry(now, org, actor, "environment.update", f"{project}/{name}",
                                          f"revision {number}")])
        return Revision(env.id, number, yaml, now, actor)

    def delete_environment(self, org: str, project: str, name: str, actor: str) -> None:
        now = now_iso()
        with self._tx() as conn:
            env = self._env(conn, org, project, name, lock=True)
            conn.execute("DELETE FROM environments WHERE id=%s", (env.id,))
            self._audit(conn, [AuditEntry(now, org, actor, "environment.delete", f"{project}/{name}")])

    # -- revisions ------------------------------------------------------------------------------

    def resolve_version(self, org: str, project: str, name: str, version: str | None) -> tuple[int, int]:
        with self._conn() as conn:
            if version is None or version == LATEST:
                # One round trip for the common case (every open resolves its imports with it).
                row = conn.execute(
                    "SELECT e.id, (SELECT MAX(r.number) FROM revisions r WHERE r.env_id = e.id) FROM environments e "
                    "WHERE e.org=%s AND e.project=%s AND e.name=%s", (org, project, name)).fetchone()
                if row is None:
                    raise NotFound(f"environment {project}/{name} not found")
                return int(row[0]), int(row[1] or 0)
            env = self._env(conn, org, project, name)
            return env.id, self._resolve(conn, env, version)

    def latest_heads(self, keys: Sequence[tuple[str, str, str]]) -> list[tuple[int, int] | None]:
        """``(environment id, head revision)`` of each ``(org, project, name)`` (None: no such
        environment), in one round trip: an open checks its whole import closure with it, and
        concurrent opens check theirs together (.heads)."""
        if not keys:
            return []
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT q.i, e.id, (SELECT MAX(r.number) FROM revisions r WHERE r.env_id = e.id) "
                "FROM unnest(%s::text[], %s::text[], %s::text[]) WITH ORDINALITY AS q(org, project, name, i) "
                "JOIN environments e ON e.org = q.org AND e.project = q.project AND e.name = q.name",
                ([o for o, _, _ in keys], [p for _, p, _ in keys], [n for _, _, n in keys])).fetchall()
        out: list[tuple[int, int] | None] = [None] * len(keys)
        for i, env_id, head in rows:
            out[int(i) - 1] = (int(env_id), int(head or 0))
        return out

    def get_revision(self, org: str, project: str, name: str, version: str | int) -> Revision:
        # REPEATABLE READ: the revision, its tags and the head come from one snapshot.
        with self._conn() as conn:
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                env = self._env(conn, org, project, name)
                number = self._resolve(conn, env, version)
                row = conn.execute("SELECT yaml, created, creator FROM revisions WHERE env_id=%s AND number=%s",
                                   (env.id, number)).fetchone()
                tags = self._tags_by_revision(conn, env.id).get(number, [])
                if number == self._head(conn, env.id):
                    tags = sorted([*tags, LATEST])
        return Revision(env.id, number, row[0], row[1], row[2], tuple(tags))

    def get_revision_by_id(self, env_id: int, number: int) -> Revision | None:
        with self._conn() as conn:
            row = conn.execute("SELECT yaml, created, creator FROM revisions WHERE env_id=%s AND number=%s",
                               (env_id, number)).fetchone()
        return None if row is None else Revision(env_id, number, row[0], row[1], row[2])

    def list_revisions(self, org: str, project: str, name: str, before: int | None, count: int) -> list[Revision]:
        with self._conn() as conn:
            env = self._env(conn, org, project, name)
            head = self._head(conn, env.id)
            limit_before = before if before is not None else head + 1
            rows = conn.execute(
                "SELECT number, created, creator FROM revisions WHERE env_id=%s AND number < %s "
                "ORDER BY number DESC LIMIT %s",
                (env.id, min(limit_before, 2**62), count)).fetchall()
            tags = self._tags_by_revision(conn, env.id)
        tags.setdefault(head, []).append(LATEST)
        return [Revision(env.id, int(n), "", c, who, tuple(sorted(tags.get(int(n), ())))) for n, c, who in rows]

    def list_revision_tags(self, org: str, project: str, name: str, after: str | None, count: int) -> list[RevisionTag]:
        with self._conn() as conn:
            env = self._env(conn, org, project, name)
            head = self._head(conn, env.id)
            rows = [RevisionTag(r[0], int(r[1]), *r[2:]) for r in conn.execute(
                "SELECT name, revision, created, modified, editor FROM revision_tags WHERE env_id=%s", (env.id,))]
        rows.append(RevisionTag(LATEST, head, env.created, env.modified, ""))
        rows.sort(key=lambda t: t.name)
        if after is not None:
            rows = [t for t in rows if t.name > after]
        return rows[:count]

    def get_revision_tag(self, org: str, project: str, name: str, tag: str) -> RevisionTag:
        with self._conn() as conn:
            env = self._env(conn, org, project, name)
            if tag == LATEST:
                return RevisionTag(LATEST, self._head(conn, env.id), env.created, env.modified, "")
            row = conn.execute(
                "SELECT name, revision, created, modified, editor FROM revision_tags WHERE env_id=%s AND name=%s",
                (env.id, tag)).fetchone()
        if row is None:
            raise NotFound(f"tag {tag!r} of {project}/{name} not found")
        return RevisionTag(row[0], int(row[1]), *row[2:])

    def set_revision_tag(
        self, org: str, project: str, name: str, tag: str, revision: int, actor: str, *, create: bool
    ) -> None:
        now = now_iso()
        with self._tx() as conn:
            env = self._env(conn, org, project, name, lock=True)
            if tag == LATEST:
                raise Conflict("the tag 'latest' is built in and always names the newest revision")
            self._resolve(conn, env, int(revision))
            exists = conn.execute("SELECT 1 FROM revision_tags WHERE env_id=%s AND name=%s",
                                  (env.id, tag)).fetchone()
            if create and exists:
                raise Conflict(f"tag {tag!r} already exists")
            if not create and not exists:
                raise NotFound(f"tag {tag!r} of {project}/{name} not found")
            if exists:
                conn.execute("UPDATE revision_tags SET revision=%s, modified=%s, editor=%s WHERE env_id=%s AND name=%s",
                             (revision, now, actor, env.id, tag))
            else:
                conn.execute("INSERT INTO revision_tags (env_id, name, revision, created, modified, editor) "
                             "VALUES (%s,%s,%s,%s,%s,%s)", (env.id, tag, revision, now, now, actor))
            self._audit(conn, [AuditEntry(now, org, actor, "revision-tag." + ("create" if create else "update"),
                                          f"{project}/{name}@{tag}", f"revision {revision}")])

    def delete_revision_tag(self, org: str, project: str, name: str, tag: str, actor: str) -> None:
        now = now_iso()
        with self._tx() as conn:
            env = self._env(conn, org, project, name, lock=True)
            if tag == LATEST:
                raise Conflict("the tag 'latest' is built in and cannot be deleted")
            cur = conn.execute("DELETE FROM revision_tags WHERE env_id=%s AND name=%s", (env.id, tag))
            if cur.rowcount == 0:
                raise NotFound(f"tag {tag!r} of {project}/{name} not found")
            self._audit(conn, [AuditEntry(now, org, actor, "revision-tag.delete", f"{project}/{name}@{tag}")])

    # -- environment tags ---------------------------------------------------------------------

    def list_env_tags(self, org: str, project: str, name: str, after: str | None, count: int) -> list[EnvTag]:
        with self._conn() as conn:
            env = self._env(conn, org, project, name)
            rows = conn.execute(
                "SELECT name, value, created, modified, editor FROM env_tags WHERE env_id=%s "
                'AND name COLLATE "C" > %s ORDER BY name COLLATE "C" LIMIT %s',
                (env.id, after or "", count)).fetchall()
        return [EnvTag(*r) for r in rows]

    def get_env_tag(self, org: str, project: str, name: str, tag: str) -> EnvTag:
        with self._conn() as conn:
            env = self._env(conn, org, project, name)
            row = conn.execute("SELECT name, value, created, modified, editor FROM env_tags "
                               "WHERE env_id=%s AND name=%s", (env.id, tag)).fetchone()
        if row is None:
            raise NotFound(f"environment tag {tag!r} of {project}/{name} not found")
        return EnvTag(*row)

    def create_env_tag(self, org: str, project: str, name: str, tag: str, value: str, actor: str) -> EnvTag:
        now = now_iso()
        with self._tx() as conn:
            env = self._env(conn, org, project, name, lock=True)
            row = conn.execute(
                "INSERT INTO env_tags (env_id, name, value, created, modified, editor) VALUES (%s,%s,%s,%s,%s,%s) "
                "ON CONFLICT (env_id, name) DO NOTHING RETURNING 1", (env.id, tag, value, now, now, actor)).fetchone()
            if row is None:
                raise Conflict(f"environment tag {tag!r} already exists")
            self._audit(conn, [AuditEntry(now, org, actor, "environment-tag.create", f"{project}/{name}", tag)])
        return EnvTag(tag, value, now, now, actor)

    def update_env_tag(
        self, org: str, project: str, name: str, tag: str, current_value: str, new_name: str, new_value: str, actor: str
    ) -> EnvTag:
        now = now_iso()
        with self._tx() as conn:
            env = self._env(conn, org, project, name, lock=True)
            row = conn.execute("SELECT value, created FROM env_tags WHERE env_id=%s AND name=%s",
                               (env.id, tag)).fetchone()
            if row is None:
                raise NotFound(f"environment tag {tag!r} of {project}/{name} not found")
            if row[0] != current_value:
                raise Conflict(f"environment tag {tag!r} has changed: its current value does not match")
            if new_name != tag and conn.execute("SELECT 1 FROM env_tags WHERE env_id=%s AND name=%s",
                                                (env.id, new_name)).fetchone():
                raise Conflict(f"environment tag {new_name!r} already exists")
            conn.execute("UPDATE env_tags SET name=%s, value=%s, modified=%s, editor=%s WHERE env_id=%s AND name=%s",
                         (new_name, new_value, now, actor, env.id, tag))
            self._audit(conn, [AuditEntry(now, org, actor, "environment-tag.update", f"{project}/{name}",
                                          f"{tag} -> {new_name}")])
        return EnvTag(new_name, new_value, row[1], now, actor)

    def delete_env_tag(self, org: str, project: str, name: str, tag: str, actor: str) -> None:
        now = now_iso()
        with self._tx() as conn:
            env = self._env(conn, org, project, name, lock=True)
            cur = conn.execute("DELETE FROM env_tags WHERE env_id=%s AND name=%s", (env.id, tag))
            if cur.rowcount == 0:
                raise NotFound(f"environment tag {tag!r} of {project}/{name} not found")
            self._audit(conn, [AuditEntry(now, org, actor, "environment-tag.delete", f"{project}/{name}", tag)])

    # -- tokens and audit -------------------------------------------------------------------------

    def add_token(self, record: TokenRecord) -> None:
        now = now_iso()
        with self._tx() as conn:
            # Two replicas adding one name at once: the second waits for the first, then sees it.
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"token\n{record.org}\n{record.name}",))
            for (expires,) in conn.execute(
                "SELECT expires FROM tokens WHERE org=%s AND name=%s AND revoked IS NULL", (record.org, record.name)
            ).fetchall():
                if expires is None or expires > now:
                    raise Conflict(f"organization {record.org} already has a token named {record.name!r}: "
                                   "choose another --name, or revoke that one first")
            conn.execute(f"INSERT INTO tokens ({_TOKEN_FIELDS}) VALUES (%s,%s,%s,%s,%s,%s,%s,%s)",
                         (record.token_hash, record.org, record.role, record.name, record.created, record.expires,
                          record.last_used, record.revoked))
            detail = record.role + (f", expires {record.expires}" if record.expires else "")
            self._audit(conn, [AuditEntry(record.created, record.org, "cli", "token.create", record.name, detail)])

    def find_token(self, token_hash: str) -> TokenRecord | None:
        with self._conn() as conn:
            row = conn.execute(f"SELECT {_TOKEN_FIELDS} FROM tokens WHERE hash=%s", (token_hash,)).fetchone()
        return None if row is None else TokenRecord(*row)

    def list_tokens(self, org: str | None = None) -> list[TokenRecord]:
        sql = f"SELECT {_TOKEN_FIELDS} FROM tokens"
        args: list[object] = []
        if org:
            sql += " WHERE org=%s"
            args.append(org)
        with self._conn() as conn:
            rows = conn.execute(sql + " ORDER BY created, seq", args).fetchall()
        return [TokenRecord(*r) for r in rows]

    def revoke_token(self, token_hash: str, actor: str) -> TokenRecord:
        now = now_iso()
        with self._tx() as conn:
            row = conn.execute(f"SELECT {_TOKEN_FIELDS} FROM tokens WHERE hash=%s FOR UPDATE",
                               (token_hash,)).fetchone()
            if row is None:
                raise NotFound("no such token")
            record = TokenRecord(*row)
            if record.revoked is None:
                conn.execute("UPDATE tokens SET revoked=%s WHERE hash=%s", (now, token_hash))
                self._audit(conn, [AuditEntry(now, record.org, actor, "token.revoke", record.name, f"id {record.id}")])
        return record

    def append_audit(self, entries: Sequence[AuditEntry], token_uses: dict[str, str] | None = None) -> None:
        if not entries and not token_uses:
            return
        with self._tx() as conn:
            self._audit(conn, entries)
            if token_uses:
                with conn.cursor() as cur:
                    cur.executemany(
                        "UPDATE tokens SET last_used=%s WHERE hash=%s AND (last_used IS NULL OR last_used < %s)",
                        [(t, h, t) for h, t in sorted(token_uses.items())])

    def read_audit(self, org: str | None = None, limit: int | None = None, *, environment: str | None = None,
                   actor: str | None = None, action: str | None = None) -> list[AuditEntry]:
        sql, args = audit_query(org, environment, actor, action, "%s")
        with self._conn() as conn:
            if limit is not None:
                rows = conn.execute(sql + ' ORDER BY time COLLATE "C" DESC, id DESC LIMIT %s', [*args, limit]).fetchall()
                rows.reverse()
            else:
                rows = conn.execute(sql + ' ORDER BY time COLLATE "C", id', args).fetchall()
        return [AuditEntry(*r) for r in rows]

    # -- settings ----------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        with self._conn() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key=%s", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as conn:
            conn.execute("INSERT INTO meta (key, value) VALUES (%s, %s) "
                         "ON CONFLICT (key) DO UPDATE SET value=excluded.value", (key, value))

    # -- organisation data keys and the migration of ciphertexts -----------------------------

    def get_org_key(self, org: str) -> bytes | None:
        """The wrapped data key of ``org`` (None: it has none yet)."""
        with self._conn() as conn:
            row = conn.execute("SELECT wrapped FROM org_keys WHERE org=%s", (org,)).fetchone()
        return None if row is None else bytes(row[0])

    def put_org_key(self, org: str, wrapped: bytes) -> bytes:
        """Store ``wrapped`` as ``org``'s data key unless it has one; returns the one stored
        (another replica's, when it won the race)."""
        with self._tx() as conn:
            conn.execute("INSERT INTO org_keys (org, wrapped, created) VALUES (%s,%s,%s) ON CONFLICT (org) DO NOTHING",
                         (org, bytes(wrapped), now_iso()))
            row = conn.execute("SELECT wrapped FROM org_keys WHERE org=%s", (org,)).fetchone()
        return bytes(row[0])

    def some_org_key(self) -> tuple[str, bytes] | None:
        """One (org, wrapped data key), to check a server key against."""
        with self._conn() as conn:
            row = conn.execute("SELECT org, wrapped FROM org_keys LIMIT 1").fetchone()
        return None if row is None else (str(row[0]), bytes(row[1]))

    def rewrite_revisions(
        self, rewrite: Callable[[str, str, str, str], str | None], *, meta: tuple[str, str]
    ) -> tuple[int, str | None]:
        """Rewrite every revision: ``rewrite(org, project, name, yaml)`` returns the new text
        (None: unchanged). If any changes, the revisions are first copied to a backup table
        (``revisions_backup_<UTC time>``); then all are rewritten and ``meta`` set in ONE
        transaction that holds the migrations' advisory lock (replicas starting together
        migrate once; an exception from ``rewrite`` leaves everything as it was). Returns
        (revisions rewritten, the backup table)."""
        query = ("SELECT e.org, e.project, e.name, r.env_id, r.number, r.yaml FROM revisions r "
                 "JOIN environments e ON e.id = r.env_id ORDER BY r.env_id, r.number")
        with self._conn() as conn:
            rows = conn.execute(query).fetchall()
        # A dry run first, outside the transaction (``rewrite`` may prepare org keys then).
        if not [1 for o, p, n, _, _, y in rows if rewrite(o, p, n, y) is not None]:
            self.set_meta(*meta)
            return 0, None
        backup = "revisions_backup_" + time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()).lower()
        count = 0
        with self._tx() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (migrations.ADVISORY_LOCK,))
            if conn.execute("SELECT value FROM meta WHERE key=%s", (meta[0],)).fetchone() == (meta[1],):
                return 0, None  # another replica migrated while this one waited for the lock
            if conn.execute("SELECT to_regclass(%s)", (backup,)).fetchone()[0] is None:
                conn.execute(f"CREATE TABLE {backup} AS SELECT * FROM revisions")
            for o, p, n, env_id, number, y in conn.execute(query).fetchall():
                new = rewrite(o, p, n, y)
                if new is not None and new != y:
                    conn.execute("UPDATE revisions SET yaml=%s WHERE env_id=%s AND number=%s", (new, env_id, number))
                    count += 1
            conn.execute("INSERT INTO meta (key, value) VALUES (%s, %s) "
                         "ON CONFLICT (key) DO UPDATE SET value=excluded.value", meta)
        return count, f"table {backup}"

    def has_data(self) -> bool:
        with self._conn() as conn:
            return conn.execute(
                "SELECT 1 FROM revisions UNION ALL SELECT 1 FROM org_keys LIMIT 1").fetchone() is not None

    def some_ciphertext(self) -> str | None:
        with self._conn() as conn:
            row = conn.execute("SELECT yaml FROM revisions WHERE strpos(yaml, 'ciphertext') > 0 "
                               "ORDER BY seq DESC LIMIT 1").fetchone()
        return None if row is None else str(row[0])


def _reason(e: Exception) -> str:
    # The first line only: psycopg's messages can carry the connection string's host and user,
    # never the password (psycopg does not print it), but keep it short.
    text = str(e).strip().splitlines()
    return text[0][:200] if text else type(e).__name__
