"""The store protocol and its records: what the HTTP layer asks of durable storage.

:class:`Store` is the small interface the server uses; each implementation (SQLite today) keeps
environments, revisions, tags, tokens and the audit log behind it. Definitions reach a store with
their secrets already encrypted: a store never sees a plaintext secret.
"""
from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

LATEST = "latest"


class StoreError(Exception):
    """Base of the store's errors; the message is safe to show to a client."""


class NotFound(StoreError):
    """The environment, revision or tag does not exist."""


class Conflict(StoreError):
    """Already exists, or a stale ``If-Match``."""


class Unavailable(StoreError):
    """The database cannot be reached now (answered 503; the store reconnects by itself)."""


class Invalid(StoreError):
    """A value the database cannot hold (a NUL character in PostgreSQL text, say)."""


def now_iso() -> str:
    """The current UTC time as RFC 3339 (what the API's ``created``/``modified`` hold)."""
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


@dataclass(frozen=True, slots=True)
class EnvironmentInfo:
    """An environment's identity and timestamps."""

    id: int
    org: str
    project: str
    name: str
    created: str
    modified: str


@dataclass(frozen=True, slots=True)
class Revision:
    """One stored revision of a definition (its secrets encrypted)."""

    env_id: int
    number: int
    yaml: str = field(repr=False)
    created: str
    creator: str
    tags: tuple[str, ...] = ()

    @property
    def etag(self) -> str:
        # The environment's id makes a re-created environment's revision 1 a different ETag.
        return f'"{self.env_id}-{self.number}"'


@dataclass(frozen=True, slots=True)
class RevisionTag:
    name: str
    revision: int
    created: str
    modified: str
    editor: str


@dataclass(frozen=True, slots=True)
class EnvTag:
    name: str
    value: str
    created: str
    modified: str
    editor: str


def parse_iso(text: str) -> float:
    """Seconds since the epoch of a :func:`now_iso` time (``2024-05-01T12:00:00.000Z``)."""
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def iso_at(t: float) -> str:
    """:func:`now_iso`'s format for the time ``t`` (seconds since the epoch)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A token as stored: only the SHA-256 of the token, never the token.

    ``expires`` (None: never), ``last_used`` (written a few seconds late, in batches) and
    ``revoked`` are :func:`now_iso` times. ``id`` is the first 12 hex digits of the hash: it
    names the token in listings and in ``token revoke`` and reveals nothing of the token.

    Example::

        record.status(time.time())   # "active", "expired" or "revoked"
    """

    token_hash: str = field(repr=False)
    org: str
    role: str
    name: str
    created: str
    expires: str | None = None
    last_used: str | None = None
    revoked: str | None = None

    @property
    def id(self) -> str:
        return self.token_hash[:12]

    def status(self, now: float) -> str:
        """``revoked``, ``expired`` or ``active`` at the time ``now`` (seconds since the epoch)."""
        if self.revoked:
            return "revoked"
        if self.expires and parse_iso(self.expires) <= now:
            return "expired"
        return "active"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of the audit log: who (``actor``: a token's name, ``cli``, or for a denied
    request ``anonymous`` / ``unknown-token:<hash prefix>``) did what (``action``:
    ``environment.open``, ``access.denied``, ...) to what (``target``: ``project/env``, ``-``
    for the organisation) when, with a ``detail`` (revision, reason). Never a secret."""

    time: str
    org: str
    actor: str
    action: str
    target: str
    detail: str = ""


class Store(Protocol):
    """What the server needs from a database. Every method is one transaction."""

    def list_environments(self, org: str, after: tuple[str, str] | None, limit: int) -> list[EnvironmentInfo]: ...
    def get_environment(self, org: str, project: str, name: str) -> EnvironmentInfo: ...
    def create_environment(self, org: str, project: str, name: str, yaml: str, actor: str) -> Revision: ...
    def clone_environment(
        self, org: str, project: str, name: str, dest_project: str, dest_name: str, actor: str,
        *, history: bool, env_tags: bool, revision_tags: bool, reseal: Callable[[str], str] | None = None,
    ) -> Revision: ...
    def update_environment(
        self, org: str, project: str, name: str, yaml: str, actor: str, if_match: str | None = None
    ) -> Revision: ...
    def delete_environment(self, org: str, project: str, name: str, actor: str) -> None: ...
    def get_revision(self, org: str, project: str, name: str, version: str | int) -> Revision: ...
    def resolve_version(self, org: str, project: str, name: str, version: str | None) -> tuple[int, int]: ...
    def latest_heads(self, keys: Sequence[tuple[str, str, str]]) -> list[tuple[int, int] | None]:
        """``(environment id, head revision)`` of each ``(org, project, name)``, None where
        there is no such environment, in one query (an open checks its import closure with it;
        concurrent opens check theirs together: see ..heads)."""
        ...
    def list_revisions(self, org: str, project: str, name: str, before: int | None, count: int) -> list[Revision]: ...
    def list_revision_tags(self, org: str, project: str, name: str, after: str | None, count: int) -> list[RevisionTag]: ...
    def get_revision_tag(self, org: str, project: str, name: str, tag: str) -> RevisionTag: ...
    def set_revision_tag(self, org: str, project: str, name: str, tag: str, revision: int, actor: str, *, create: bool) -> None: ...
    def delete_revision_tag(self, org: str, project: str, name: str, tag: str, actor: str) -> None: ...
    def list_env_tags(self, org: str, project: str, name: str, after: str | None, count: int) -> list[EnvTag]: ...
    def get_env_tag(self, org: str, project: str, name: str, tag: str) -> EnvTag: ...
    def create_env_tag(self, org: str, project: str, name: str, tag: str, value: str, actor: str) -> EnvTag: ...
    def update_env_tag(
        self, org: str, project: str, name: str, tag: str, current_value: str, new_name: str, new_value: str, actor: str
    ) -> EnvTag: ...
    def delete_env_tag(self, org: str, project: str, name: str, tag: str, actor: str) -> None: ...
    def add_token(self, record: TokenRecord) -> None: ...
    def find_token(self, token_hash: str) -> TokenRecord | None: ...
    def list_tokens(self, org: str | None = None) -> list[TokenRecord]: ...
    def revoke_token(self, token_hash: str, actor: str) -> TokenRecord: ...
    def append_audit(self, entries: Sequence[AuditEntry], token_uses: dict[str, str] | None = None) -> None: ...
    def read_audit(self, org: str | None = None, limit: int | None = None, *, environment: str | None = None,
                   actor: str | None = None, action: str | None = None) -> list[AuditEntry]: ...
    def get_meta(self, key: str) -> str | None: ...
    def set_meta(self, key: str, value: str) -> None: ...
    # Organisation data keys, wrapped by the server key (AES-GCM, the org as associated data).
    # put_org_key stores ``wrapped`` unless the org has a key and returns the stored one: two
    # processes creating a key at once agree on the first.
    def get_org_key(self, org: str) -> bytes | None: ...
    def put_org_key(self, org: str, wrapped: bytes) -> bytes: ...
    # The migration hook: back up, then rewrite every revision and set ``meta`` in one
    # transaction (nothing when ``rewrite`` changes nothing); (count, backup location).
    def rewrite_revisions(
        self, rewrite: Callable[[str, str, str, str], str | None], *, meta: tuple[str, str]
    ) -> tuple[int, str | None]: ...
    def close(self) -> None: ...


def audit_query(org: str | None, environment: str | None, actor: str | None, action: str | None,
                mark: str) -> tuple[str, list[object]]:
    """The ``SELECT`` of :meth:`Store.read_audit`'s filters, with ``mark`` as the parameter
    placeholder (``?`` for SQLite, ``%s`` for psycopg), and its arguments. ``environment``
    (``project/env``) matches the environment and its revision tags (``project/env@tag``)."""
    where: list[str] = []
    args: list[object] = []
    for column, value in (("org", org), ("actor", actor), ("action", action)):
        if value:
            where.append(f"{column}={mark}")
            args.append(value)
    if environment:
        where.append(f"(target={mark} OR substr(target, 1, {mark})={mark})")
        args += [environment, len(environment) + 1, environment + "@"]
    sql = "SELECT time, org, actor, action, target, detail FROM audit"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return sql, args


def encode_page_token(*parts: str) -> str:
    """An opaque continuation token for the last item of a page."""
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode().rstrip("=")


def decode_page_token(token: str, arity: int) -> tuple[str, ...] | None:
    """The parts of a continuation token; ``None`` if it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        parts = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(parts, list) or len(parts) != arity or not all(isinstance(p, str) for p in parts):
        return None
    return tuple(parts)


