"""The SQLite implementation of the :class:`~.base.Store` protocol: one SQLite file (WAL mode,
``synchronous=FULL``, one ``BEGIN IMMEDIATE`` transaction per change), mode 0600 in a 0700
folder (see :mod:`.files`).

Example::

    store = SQLiteStore("data/esc.db")
    rev = store.create_environment("acme", "default", "dev", "values: {}\\n", actor="ci")
    store.update_environment("acme", "default", "dev", "values: {a: 1}\\n", actor="ci", if_match=rev.etag)
    store.get_revision("acme", "default", "dev", "latest").number   # 2
"""
from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
import time
from typing import Any, Callable, Iterable, Sequence

from . import migrations
from .rows import AUDIT, insert_rows
from .files import private_file, private_folder, tighten_file

from .base import (
    audit_query,
    AuditEntry,
    Conflict,
    EnvTag,
    EnvironmentInfo,
    LATEST,
    NotFound,
    Revision,
    RevisionTag,
    TokenRecord,
    now_iso,
)

__all__ = ["SQLiteStore"]

_TOKEN_FIELDS = "hash, org, role, name, created, expires, last_used, revoked"


class SQLiteStore:
    """:class:`Store` on a SQLite file. Thread-safe (one connection, serialised by a lock);
    other processes (the ``token create`` command) may write to the same file concurrently.

    Example::

        store = SQLiteStore(Path(data_dir) / "esc.db")
    """

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        self.path = Path(path)
        # What the caller should tell the user (an existing data folder open to others).
        self.warnings: list[str] = []
        if not create and not self.path.exists():
            raise FileNotFoundError(str(self.path))
        warning = private_folder(self.path.parent)
        if warning:
            self.warnings.append(warning)
        # Created 0600 before SQLite opens it: SQLite gives its -wal and -shm files the mode of
        # the database file, so all three are the owner's alone whatever the umask.
        private_file(self.path)
        for suffix in ("-wal", "-shm", "-journal"):
            tighten_file(self.path.with_name(self.path.name + suffix))
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE ... COMMIT).
        self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False, timeout=30)
        self._lock = threading.RLock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit is on disk before the client hears of it (durable across power loss,
            # not only across a killed process).
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            # The schema's versioned migrations, under the write lock (see .migrations).
            migrations.apply_sqlite(self._db)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- plumbing ---------------------------------------------------------------------------

    def _tx(self) -> "_Tx":
        return _Tx(self)

    def _env(self, org: str, project: str, name: str) -> EnvironmentInfo:
        row = self._db.execute(
            "SELECT id, org, project, name, created, modified FROM environments WHERE org=? AND project=? AND name=?",
            (org, project, name),
        ).fetchone()
        if row is None:
            raise NotFound(f"environment {project}/{name} not found")
        return EnvironmentInfo(*row)

    def _head(self, env_id: int) -> int:
        row = self._db.execute("SELECT MAX(number) FROM revisions WHERE env_id=?", (env_id,)).fetchone()
        return int(row[0] or 0)

    def _resolve(self, env: EnvironmentInfo, version: str | int | None) -> int:
        if version is None or version == LATEST:
            return self._head(env.id)
        if isinstance(version, int) or (isinstance(version, str) and version.isascii() and version.isdigit()):
            number = int(version)
            # SQLite integers are 64-bit: anything larger cannot be a revision.
            if 0 < number < 2**62 and self._db.execute(
                "SELECT 1 FROM revisions WHERE env_id=? AND number=?", (env.id, number)
            ).fetchone():
                return number
            raise NotFound(f"revision {number} of {env.project}/{env.name} not found")
        row = self._db.execute(
            "SELECT revision FROM revision_tags WHERE env_id=? AND name=?", (env.id, version)
        ).fetchone()
        if row is None:
            raise NotFound(f"tag {version!r} of {env.project}/{env.name} not found")
        return int(row[0])

    def _tags_by_revision(self, env_id: int) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for name, rev in self._db.execute(
            "SELECT name, revision FROM revision_tags WHERE env_id=? ORDER BY name", (env_id,)
        ):
            out.setdefault(rev, []).append(name)
        return out

    def _audit(self, entries: Iterable[AuditEntry]) -> None:
        insert_rows(self._db, AUDIT, [(e.time, e.org, e.actor, e.action, e.target, e.detail) for e in entries])

    # -- environments -------------------------------------------------------------------------

    def list_environments(self, org: str, after: tuple[str, str] | None, limit: int) -> list[EnvironmentInfo]:
        with self._lock:
            a = after or ("", "")
            rows = self._db.execute(
                "SELECT id, org, project, name, created, modified FROM environments "
                "WHERE org=? AND (project > ? OR (project = ? AND name > ?)) ORDER BY project, name LIMIT ?",
                (org, a[0], a[0], a[1], limit),
            ).fetchall()
        return [EnvironmentInfo(*r) for r in rows]

    def get_environment(self, org: str, project: str, name: str) -> EnvironmentInfo:
        with self._lock:
            return self._env(org, project, name)

    def create_environment(self, org: str, project: str, name: str, yaml: str, actor: str) -> Revision:
        now = now_iso()
        with self._tx():
            if self._db.execute(
                "SELECT 1 FROM environments WHERE org=? AND project=? AND name=?", (org, project, name)
            ).fetchone():
                raise Conflict(f"environment {project}/{name} already exists")
            cur = self._db.execute(
                "INSERT INTO environments (org, project, name, created, modified) VALUES (?,?,?,?,?)",
                (org, project, name, now, now),
            )
            env_id = int(cur.lastrowid)
            self._db.execute(
                "INSERT INTO revisions (env_id, number, yaml, created, creator) VALUES (?,?,?,?,?)",
                (env_id, 1, yaml, now, actor),
            )
            self._audit([AuditEntry(now, org, actor, "environment.create", f"{project}/{name}", "revision 1")])
        return Revision(env_id, 1, yaml, now, actor)

    def clone_environment(
        self, org: str, project: str, name: str, dest_project: str, dest_name: str, actor: str,
        *, history: bool, env_tags: bool, revision_tags: bool, reseal: Callable[[str], str] | None = None,
    ) -> Revision:
        now = now_iso()
        with self._tx():
            src = self._env(org, project, name)
            if self._db.execute(
                "SELECT 1 FROM environments WHERE org=? AND project=? AND name=?", (org, dest_project, dest_name)
            ).fetchone():
                raise Conflict(f"environment {dest_project}/{dest_name} already exists")
            cur = self._db.execute(
                "INSERT INTO environments (org, project, name, created, modified) VALUES (?,?,?,?,?)",
                (org, dest_project, dest_name, now, now),
            )
            dest = int(cur.lastrowid)
            head = self._head(src.id)
            if history:
                self._db.execute(
                    "INSERT INTO revisions (env_id, number, yaml, created, creator) "
                    "SELECT ?, number, yaml, created, creator FROM revisions WHERE env_id=?",
                    (dest, src.id),
                )
                number = head
                if revision_tags:
                    self._db.execute(
                        "INSERT INTO revision_tags (env_id, name, revision, created, modified, editor) "
                        "SELECT ?, name, revision, created, modified, editor FROM revision_tags WHERE env_id=?",
                        (dest, src.id),
                    )
            else:
                self._db.execute(
                    "INSERT INTO revisions (env_id, number, yaml, created, creator) "
                    "SELECT ?, 1, yaml, ?, ? FROM revisions WHERE env_id=? AND number=?",
                    (dest, now, actor, src.id, head),
                )
                number = 1
                if revision_tags:
                    # Without history only the tags of the head revision still have a target.
                    self._db.execute(
                        "INSERT INTO revision_tags (env_id, name, revision, created, modified, editor) "
                        "SELECT ?, name, 1, ?, ?, ? FROM revision_tags WHERE env_id=? AND revision=?",
                        (dest, now, now, actor, src.id, head),
                    )
            if env_tags:
                self._db.execute(
                    "INSERT INTO env_tags (env_id, name, value, created, modified, editor) "
                    "SELECT ?, name, value, created, modified, editor FROM env_tags WHERE env_id=?",
                    (dest, src.id),
                )
            if reseal is not None:
                # Ciphertexts are bound to their environment: re-encrypted for the copy's (a
                # DecryptionError rolls the whole clone back).
                for n, text in self._db.execute(
                    "SELECT number, yaml FROM revisions WHERE env_id=?", (dest,)
                ).fetchall():
                    new = reseal(text)
                    if new != text:
                        self._db.execute("UPDATE revisions SET yaml=? WHERE env_id=? AND number=?", (new, dest, n))
            yaml = self._db.execute(
                "SELECT yaml FROM revisions WHERE env_id=? AND number=?", (dest, number)
            ).fetchone()[0]
            self._audit([
                AuditEntry(now, org, actor, "environment.clone", f"{dest_project}/{dest_name}", f"from {project}/{name}")
            ])
        return Revision(dest, number, yaml, now, actor)

    def update_environment(
        self, org: str, project: str, name: str, yaml: str, actor: str, if_match: str | None = None
    ) -> Revision:
        now = now_iso()
        with self._tx():
            env = self._env(org, project, name)
            head = self._head(env.id)
            if if_match is not None and if_match.strip() != "*":
                current = Revision(env.id, head, "", "", "").etag
                wanted = {t.strip().removeprefix("W/") for t in if_match.split(",")}
                if current not in wanted and current.strip('"') not in wanted:
                    raise Conflict(f"environment {project}/{name} has changed (now at revision {head}): If-Match is stale")
            number = head + 1
            self._db.execute(
                "INSERT INTO revisions (env_id, number, yaml, created, creator) VALUES (?,?,?,?,?)",
                (env.id, number, yaml, now, actor),
            )
            self._db.execute("UPDATE environments SET modified=? WHERE id=?", (now, env.id))
            self._audit([AuditEntry(now, org, actor, "environment.update", f"{project}/{name}", f"revision {number}")])
        return Revision(env.id, number, yaml, now, actor)

    def delete_environment(self, org: str, project: str, name: str, actor: str) -> None:
        now = now_iso()
        with self._tx():
            env = self._env(org, project, name)
            self._db.execute("DELETE FROM environments WHERE id=?", (env.id,))
            self._audit([AuditEntry(now, org, actor, "environment.delete", f"{project}/{name}")])

    # -- revisions ------------------------------------------------------------------------------

    def resolve_version(self, org: str, project: str, name: str, version: str | None) -> tuple[int, int]:
        """``(environment id, revision number)`` of a version (number, tag, ``None`` = latest)."""
        with self._lock:
            env = self._env(org, project, name)
            return env.id, self._resolve(env, version)

    def latest_heads(self, keys: Sequence[tuple[str, str, str]]) -> list[tuple[int, int] | None]:
        if not keys:
            return []
        out: list[tuple[int, int] | None] = [None] * len(keys)
        # SQLite binds at most 32766 parameters: a closure is far smaller, but chunk anyway.
        step = 8_000
        with self._lock:
            for start in range(0, len(keys), step):
                chunk = keys[start:start + step]
                values = ",".join("(?,?,?,?)" for _ in chunk)
                params: list[Any] = [x for i, (o, p, n) in enumerate(chunk, start) for x in (i, o, p, n)]
                rows = self._db.execute(
                    f"WITH q(i, org, project, name) AS (VALUES {values}) "
                    "SELECT q.i, e.id, (SELECT MAX(r.number) FROM revisions r WHERE r.env_id = e.id) "
                    "FROM q JOIN environments e ON e.org = q.org AND e.project = q.project AND e.name = q.name",
                    params).fetchall()
                for i, env_id, head in rows:
                    out[int(i)] = (int(env_id), int(head or 0))
        return out

    def get_revision(self, org: str, project: str, name: str, version: str | int) -> Revision:
        with self._lock:
            env = self._env(org, project, name)
            number = self._resolve(env, version)
            row = self._db.execute(
                "SELECT yaml, created, creator FROM revisions WHERE env_id=? AND number=?", (env.id, number)
            ).fetchone()
            tags = self._tags_by_revision(env.id).get(number, [])
            if number == self._head(env.id):
                tags = sorted([*tags, LATEST])
        return Revision(env.id, number, row[0], row[1], row[2], tuple(tags))

    def get_revision_by_id(self, env_id: int, number: int) -> Revision | None:
        """A revision by its environment's id (for caches keyed on ids)."""
        with self._lock:
            row = self._db.execute(
                "SELECT yaml, created, creator FROM revisions WHERE env_id=? AND number=?", (env_id, number)
            ).fetchone()
        return None if row is None else Revision(env_id, number, row[0], row[1], row[2])

    def list_revisions(self, org: str, project: str, name: str, before: int | None, count: int) -> list[Revision]:
        with self._lock:
            env = self._env(org, project, name)
            head = self._head(env.id)
            rows = self._db.execute(
                "SELECT number, created, creator FROM revisions WHERE env_id=? AND number < ? "
                "ORDER BY number DESC LIMIT ?",
                (env.id, before if before is not None else head + 1, count),
            ).fetchall()
            tags = self._tags_by_revision(env.id)
        tags.setdefault(head, []).append(LATEST)
        return [Revision(env.id, n, "", c, who, tuple(sorted(tags.get(n, ())))) for n, c, who in rows]

    def list_revision_tags(self, org: str, project: str, name: str, after: str | None, count: int) -> list[RevisionTag]:
        with self._lock:
            env = self._env(org, project, name)
            head = self._head(env.id)
            rows = [
                RevisionTag(*r)
                for r in self._db.execute(
                    "SELECT name, revision, created, modified, editor FROM revision_tags WHERE env_id=?", (env.id,)
                )
            ]
        rows.append(RevisionTag(LATEST, head, env.created, env.modified, ""))
        rows.sort(key=lambda t: t.name)
        if after is not None:
            rows = [t for t in rows if t.name > after]
        return rows[:count]

    def get_revision_tag(self, org: str, project: str, name: str, tag: str) -> RevisionTag:
        with self._lock:
            env = self._env(org, project, name)
            if tag == LATEST:
                return RevisionTag(LATEST, self._head(env.id), env.created, env.modified, "")
            row = self._db.execute(
                "SELECT name, revision, created, modified, editor FROM revision_tags WHERE env_id=? AND name=?",
                (env.id, tag),
            ).fetchone()
        if row is None:
            raise NotFound(f"tag {tag!r} of {project}/{name} not found")
        return RevisionTag(*row)

    def set_revision_tag(
        self, org: str, project: str, name: str, tag: str, revision: int, actor: str, *, create: bool
    ) -> None:
        now = now_iso()
        with self._tx():
            env = self._env(org, project, name)
            if tag == LATEST:
                raise Conflict("the tag 'latest' is built in and always names the newest revision")
            self._resolve(env, int(revision))  # NotFound when there is no such revision
            exists = self._db.execute(
                "SELECT 1 FROM revision_tags WHERE env_id=? AND name=?", (env.id, tag)
            ).fetchone()
            if create and exists:
                raise Conflict(f"tag {tag!r} already exists")
            if not create and not exists:
                raise NotFound(f"tag {tag!r} of {project}/{name} not found")
            if exists:
                self._db.execute(
                    "UPDATE revision_tags SET revision=?, modified=?, editor=? WHERE env_id=? AND name=?",
                    (revision, now, actor, env.id, tag),
                )
            else:
                self._db.execute(
                    "INSERT INTO revision_tags (env_id, name, revision, created, modified, editor) VALUES (?,?,?,?,?,?)",
                    (env.id, tag, revision, now, now, actor),
                )
            self._audit([AuditEntry(now, org, actor, "revision-tag." + ("create" if create else "update"),
                                    f"{project}/{name}@{tag}", f"revision {revision}")])

    def delete_revision_tag(self, org: str, project: str, name: str, tag: str, actor: str) -> None:
        now = now_iso()
        with self._tx():
            env = self._env(org, project, name)
            if tag == LATEST:
                raise Conflict("the tag 'latest' is built in and cannot be deleted")
            cur = self._db.execute("DELETE FROM revision_tags WHERE env_id=? AND name=?", (env.id, tag))
            if cur.rowcount == 0:
                raise NotFound(f"tag {tag!r} of {project}/{name} not found")
            self._audit([AuditEntry(now, org, actor, "revision-tag.delete", f"{project}/{name}@{tag}")])

    # -- environment tags ---------------------------------------------------------------------

    def list_env_tags(self, org: str, project: str, name: str, after: str | None, count: int) -> list[EnvTag]:
        with self._lock:
            env = self._env(org, project, name)
            rows = self._db.execute(
                "SELECT name, value, created, modified, editor FROM env_tags WHERE env_id=? AND name > ? "
                "ORDER BY name LIMIT ?",
                (env.id, after or "", count),
            ).fetchall()
        return [EnvTag(*r) for r in rows]

    def get_env_tag(self, org: str, project: str, name: str, tag: str) -> EnvTag:
        with self._lock:
            env = self._env(org, project, name)
            row = self._db.execute(
                "SELECT name, value, created, modified, editor FROM env_tags WHERE env_id=? AND name=?", (env.id, tag)
            ).fetchone()
        if row is None:
            raise NotFound(f"environment tag {tag!r} of {project}/{name} not found")
        return EnvTag(*row)

    def create_env_tag(self, org: str, project: str, name: str, tag: str, value: str, actor: str) -> EnvTag:
        now = now_iso()
        with self._tx():
            env = self._env(org, project, name)
            if self._db.execute("SELECT 1 FROM env_tags WHERE env_id=? AND name=?", (env.id, tag)).fetchone():
                raise Conflict(f"environment tag {tag!r} already exists")
            self._db.execute(
                "INSERT INTO env_tags (env_id, name, value, created, modified, editor) VALUES (?,?,?,?,?,?)",
                (env.id, tag, value, now, now, actor),
            )
            self._audit([AuditEntry(now, org, actor, "environment-tag.create", f"{project}/{name}", tag)])
        return EnvTag(tag, value, now, now, actor)

    def update_env_tag(
        self, org: str, project: str, name: str, tag: str, current_value: str, new_name: str, new_value: str, actor: str
    ) -> EnvTag:
        now = now_iso()
        with self._tx():
            env = self._env(org, project, name)
            row = self._db.execute(
                "SELECT value, created FROM env_tags WHERE env_id=? AND name=?", (env.id, tag)
            ).fetchone()
            if row is None:
                raise NotFound(f"environment tag {tag!r} of {project}/{name} not found")
            if row[0] != current_value:
                raise Conflict(f"environment tag {tag!r} has changed: its current value does not match")
            if new_name != tag and self._db.execute(
                "SELECT 1 FROM env_tags WHERE env_id=? AND name=?", (env.id, new_name)
            ).fetchone():
                raise Conflict(f"environment tag {new_name!r} already exists")
            self._db.execute(
                "UPDATE env_tags SET name=?, value=?, modified=?, editor=? WHERE env_id=? AND name=?",
                (new_name, new_value, now, actor, env.id, tag),
            )
            self._audit([AuditEntry(now, org, actor, "environment-tag.update", f"{project}/{name}", f"{tag} -> {new_name}")])
        return EnvTag(new_name, new_value, row[1], now, actor)

    def delete_env_tag(self, org: str, project: str, name: str, tag: str, actor: str) -> None:
        now = now_iso()
        with self._tx():
            env = self._env(org, project, name)
            cur = self._db.execute("DELETE FROM env_tags WHERE env_id=? AND name=?", (env.id, tag))
            if cur.rowcount == 0:
                raise NotFound(f"environment tag {tag!r} of {project}/{name} not found")
            self._audit([AuditEntry(now, org, actor, "environment-tag.delete", f"{project}/{name}", tag)])

    # -- tokens and audit -------------------------------------------------------------------------

    def add_token(self, record: TokenRecord) -> None:
        """Store a new token; :class:`Conflict` when the organisation already has a token of
        that name that is neither revoked nor expired (names are how people tell tokens apart)."""
        now = now_iso()
        with self._tx():
            for (expires,) in self._db.execute(
                "SELECT expires FROM tokens WHERE org=? AND name=? AND revoked IS NULL", (record.org, record.name)
            ).fetchall():
                if expires is None or expires > now:
                    raise Conflict(f"organization {record.org} already has a token named {record.name!r}: "
                                   "choose another --name, or revoke that one first")
            self._db.execute(
                f"INSERT INTO tokens ({_TOKEN_FIELDS}) VALUES (?,?,?,?,?,?,?,?)",
                (record.token_hash, record.org, record.role, record.name, record.created, record.expires,
                 record.last_used, record.revoked),
            )
            detail = record.role + (f", expires {record.expires}" if record.expires else "")
            self._audit([AuditEntry(record.created, record.org, "cli", "token.create", record.name, detail)])

    def find_token(self, token_hash: str) -> TokenRecord | None:
        with self._lock:
            row = self._db.execute(f"SELECT {_TOKEN_FIELDS} FROM tokens WHERE hash=?", (token_hash,)).fetchone()
        return None if row is None else TokenRecord(*row)

    def list_tokens(self, org: str | None = None) -> list[TokenRecord]:
        """Every token (of ``org``), oldest first."""
        with self._lock:
            sql = f"SELECT {_TOKEN_FIELDS} FROM tokens"
            args: list[object] = []
            if org:
                sql += " WHERE org=?"
                args.append(org)
            rows = self._db.execute(sql + " ORDER BY created, rowid", args).fetchall()
        return [TokenRecord(*r) for r in rows]

    def revoke_token(self, token_hash: str, actor: str) -> TokenRecord:
        """Mark a token revoked (the row stays, for listings and the audit log); returns it as
        it was. :class:`NotFound` if there is no such token; revoking twice keeps the first time."""
        now = now_iso()
        with self._tx():
            row = self._db.execute(f"SELECT {_TOKEN_FIELDS} FROM tokens WHERE hash=?", (token_hash,)).fetchone()
            if row is None:
                raise NotFound("no such token")
            record = TokenRecord(*row)
            if record.revoked is None:
                self._db.execute("UPDATE tokens SET revoked=? WHERE hash=?", (now, token_hash))
                self._audit([AuditEntry(now, record.org, actor, "token.revoke", record.name, f"id {record.id}")])
        return record

    def append_audit(self, entries: Sequence[AuditEntry], token_uses: dict[str, str] | None = None) -> None:
        """Write audit entries, and the last-used times of tokens (hash -> time), in one
        transaction: durable when this returns."""
        if not entries and not token_uses:
            return
        with self._tx():
            self._audit(entries)
            if token_uses:
                self._db.executemany(
                    "UPDATE tokens SET last_used=? WHERE hash=? AND (last_used IS NULL OR last_used < ?)",
                    [(t, h, t) for h, t in token_uses.items()],
                )

    def read_audit(self, org: str | None = None, limit: int | None = None, *, environment: str | None = None,
                   actor: str | None = None, action: str | None = None) -> list[AuditEntry]:
        """Audit entries in time order, filtered; ``limit``: only the last ``limit`` of them.
        ``environment`` (``project/env``) matches the environment and its revision tags
        (``project/env@tag``)."""
        sql, args = audit_query(org, environment, actor, action, "?")
        with self._lock:
            if limit is not None:
                # The last N in time order: the newest N, then turned around.
                rows = self._db.execute(sql + " ORDER BY time DESC, id DESC LIMIT ?", [*args, limit]).fetchall()
                rows.reverse()
            else:
                rows = self._db.execute(sql + " ORDER BY time, id", args).fetchall()
        return [AuditEntry(*r) for r in rows]

    # -- settings of the data folder ---------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._tx():
            self._db.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                             "ON CONFLICT (key) DO UPDATE SET value=excluded.value", (key, value))

    # -- organisation data keys and the migration of ciphertexts -----------------------------

    def get_org_key(self, org: str) -> bytes | None:
        """The wrapped data key of ``org`` (None: it has none yet)."""
        with self._lock:
            row = self._db.execute("SELECT wrapped FROM org_keys WHERE org=?", (org,)).fetchone()
        return None if row is None else bytes(row[0])

    def put_org_key(self, org: str, wrapped: bytes) -> bytes:
        """Store ``wrapped`` as ``org``'s data key unless it has one; returns the one stored
        (another process's, when it won the race)."""
        with self._tx():
            self._db.execute("INSERT INTO org_keys (org, wrapped, created) VALUES (?,?,?) ON CONFLICT (org) DO NOTHING",
                             (org, bytes(wrapped), now_iso()))
            row = self._db.execute("SELECT wrapped FROM org_keys WHERE org=?", (org,)).fetchone()
        return bytes(row[0])

    def rewrite_revisions(
        self, rewrite: Callable[[str, str, str, str], str | None], *, meta: tuple[str, str]
    ) -> tuple[int, str | None]:
        """Rewrite every revision of every environment: ``rewrite(org, project, name, yaml)``
        returns the new text (None: unchanged). If any changes, the database is first backed up
        to ``backup-<UTC time>.db`` beside it (SQLite's backup API: a consistent copy); then all
        revisions are rewritten, and ``meta`` set, in ONE transaction: an exception from
        ``rewrite`` leaves everything as it was. Returns (revisions rewritten, backup path)."""
        query = ("SELECT e.org, e.project, e.name, r.env_id, r.number, r.yaml FROM revisions r "
                 "JOIN environments e ON e.id = r.env_id ORDER BY r.env_id, r.number")
        with self._lock:
            rows = self._db.execute(query).fetchall()
        # A dry run first, outside any transaction: the backup cannot be taken inside one.
        # (Every row: ``rewrite`` may prepare what it needs, such as org keys, outside the
        # transaction too.)
        if not [1 for o, p, n, _, _, y in rows if rewrite(o, p, n, y) is not None]:
            self.set_meta(*meta)
            return 0, None
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        backup, i = self.path.with_name(f"backup-{stamp}.db"), 1
        while backup.exists():
            backup, i = self.path.with_name(f"backup-{stamp}-{i}.db"), i + 1
        private_file(backup)
        with self._lock:
            target = sqlite3.connect(str(backup))
            try:
                self._db.backup(target)
            finally:
                target.close()
        count = 0
        with self._tx():
            # Read again under the write lock: another process may have written meanwhile.
            for o, p, n, env_id, number, y in self._db.execute(query).fetchall():
                new = rewrite(o, p, n, y)
                if new is not None and new != y:
                    self._db.execute("UPDATE revisions SET yaml=? WHERE env_id=? AND number=?", (new, env_id, number))
                    count += 1
            self._db.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                             "ON CONFLICT (key) DO UPDATE SET value=excluded.value", meta)
        return count, str(backup)

    def some_org_key(self) -> tuple[str, bytes] | None:
        """One (org, wrapped data key), to check a server key against."""
        with self._lock:
            row = self._db.execute("SELECT org, wrapped FROM org_keys LIMIT 1").fetchone()
        return None if row is None else (str(row[0]), bytes(row[1]))

    def has_data(self) -> bool:
        """Whether any environment revision is stored (secrets encrypted with some key)."""
        with self._lock:
            return self._db.execute(
                "SELECT 1 FROM revisions UNION ALL SELECT 1 FROM org_keys LIMIT 1").fetchone() is not None

    def some_ciphertext(self) -> str | None:
        """A stored revision that holds a ciphertext (the newest), to check a key against."""
        with self._lock:
            row = self._db.execute(
                "SELECT yaml FROM revisions WHERE instr(yaml, 'ciphertext') > 0 ORDER BY rowid DESC LIMIT 1"
            ).fetchone()
        return None if row is None else str(row[0])


class _Tx:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error) under the store's lock.

    IMMEDIATE takes the write lock up front, so a read-check-write (If-Match, name conflicts)
    cannot interleave with another process's write.
    """

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store

    def __enter__(self) -> None:
        self.store._lock.acquire()
        try:
            self.store._db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.store._lock.release()
            raise

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.store._db.execute("COMMIT")
            else:
                self.store._db.execute("ROLLBACK")
        finally:
            self.store._lock.release()
