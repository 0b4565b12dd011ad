"""Where open sessions live: in this process's memory, or in the database for every process.

A session is what an open returned, kept until its duration ends. Who must be able to read it
decides where it is kept, and the server holds one :class:`SessionStore` that says so:

- :class:`MemorySessionStore`: only the process that opened it reads it (one SQLite server).
  The session is a :class:`~.sessions.Sessions` entry and nothing else: an open writes only its
  audit entries, and a read touches no database. A restart ends these sessions (clients open
  again), and another server process on the same folder does not see them.
- :class:`DatabaseSessionStore`: any process on the store reads it (PostgreSQL replicas,
  ``serve --workers N``, ``serve --shared-sessions`` for several SQLite servers on one folder).
  The session is also a row of :mod:`.shared_sessions` (its value pickled and sealed with the
  server key, its id kept as a SHA-256 only), committed with the open's audit entries in the
  audit writer's group commit; the opening process keeps the value in memory as a cache.

Both bound their sessions with :class:`~.sessions.SessionLimits` by the same code
(:class:`~.sessions.Sessions` in memory; the rows apply the same rules across processes), and
both acknowledge an open only once its audit entries are durable: the ``audit`` callable given
to them returns after the commit (and raises when the log cannot be written).

:func:`choose_session_store` picks one: the database store when the store is not SQLite
(PostgreSQL is for several replicas) or when the configuration says sessions are shared;
memory otherwise.

Example::

    store = choose_session_store(sqlite_store, limits, cipher, audit_now, shared=False)
    s = await store.open("acme", ("app", "dev"), "app/dev", evaluation, 3600, entries)
    (await store.get("acme", ("app", "dev"), s.id)).value
"""
from __future__ import annotations

import asyncio
import logging
import secrets as pysecrets
import time
from typing import Any, Awaitable, Callable, Protocol

from ..secrets.crypto import AesGcmCipher
from .sessions import Evaluation, Session, SessionGone, SessionLimits, Sessions
from .shared_sessions import SessionRow, SessionRows, id_hash, seal, session_rows, unseal
from .store import AuditEntry, SQLiteStore, Store
from .transfer import pack_value, unpack_value

__all__ = ["Audit", "DatabaseSessionStore", "MemorySessionStore", "SessionStore", "choose_session_store"]

log = logging.getLogger("esc_pulumi.server")

# Writes an open's audit entries (and the session rows to commit with them) durably; returns
# once they are committed, raises when they cannot be (the open then fails unacknowledged).
Audit = Callable[[list[AuditEntry], list[tuple[SessionRow, bytes]]], Awaitable[None]]

_GONE = "open session not found: it expired, was evicted or never existed; open the environment again"
_EXPIRED = "open session has expired: open the environment again"


class SessionStore(Protocol):
    """Where a server's open sessions live (see the module docstring)."""

    @property
    def limits(self) -> SessionLimits:
        """The bounds of the sessions (size, per-organisation share, count, durations)."""
        ...

    @property
    def memory(self) -> Sessions:
        """This process's sessions in memory (all of them, or the cache of the shared ones): its
        ``freed`` tells the server when to give memory back to the system."""
        ...

    @property
    def shared(self) -> bool:
        """Whether other processes read these sessions (they are in the database)."""
        ...

    def check_size(self, evaluation: Evaluation) -> None:
        """:class:`~.sessions.SessionTooLarge` if a session of ``evaluation`` could never fit
        (checked before the open is audited)."""
        ...

    async def seal(self, packed: Any, diagnostics: Any, model: Any = None) -> bytes | None:
        """What this store keeps of a packed value (with its diagnostics and detailed model)
        for other processes (encrypted), made once per evaluation; None when no other process
        reads it."""
        ...

    async def open(self, org: str, target: tuple[str, str] | None, environment: str, evaluation: Evaluation,
                   duration: float, entries: list[AuditEntry]) -> Session:
        """A new session, returned once the open's audit ``entries`` are durable."""
        ...

    async def get(self, org: str, target: tuple[str, str] | None, sid: str) -> Session:
        """The session ``sid`` of ``org`` and ``target``; :class:`~.sessions.SessionGone` when
        there is none (expired, evicted, another organisation's or environment's), and
        :class:`~.sessions.SessionTooLarge` when another process opened it and it does not fit
        this one's budget."""
        ...

    async def sweep(self) -> None:
        """Drop the expired sessions (the server calls this every second: they hold plaintext)."""
        ...


class _ProcessSessions:
    """What both stores share: the sessions this process holds (bounded by ``limits``), the
    audit writer that makes an open durable, and the sweep."""

    __slots__ = ("_memory", "_audit")

    def __init__(self, limits: SessionLimits, audit: Audit) -> None:
        self._memory = Sessions(limits)
        self._audit = audit

    @property
    def limits(self) -> SessionLimits:
        return self._memory.limits

    @property
    def memory(self) -> Sessions:
        return self._memory

    def check_size(self, evaluation: Evaluation) -> None:
        self._memory.check_size(evaluation)

    async def sweep(self) -> None:
        self._memory.sweep()


class MemorySessionStore(_ProcessSessions):
    """Sessions in this process only: an open costs its audit commit and nothing more.

    Given the folder's session ``rows``, it also deletes the expired rows that servers with
    shared sessions left there (``--workers``, ``--shared-sessions`` on the same folder before,
    or beside this one): their values are sealed secrets, and no one else may be left to
    sweep them. Once at start, then every :attr:`ROWS_SWEEP_INTERVAL` seconds (a shared-mode
    server sweeps them every second itself)."""

    __slots__ = ("_rows", "_rows_swept")

    ROWS_SWEEP_INTERVAL = 60.0

    def __init__(self, limits: SessionLimits, audit: Audit, rows: SessionRows | None = None) -> None:
        super().__init__(limits, audit)
        self._rows = rows
        self._rows_swept: float | None = None  # monotonic time of the last sweep of the rows

    async def sweep(self) -> None:
        await super().sweep()
        now = time.monotonic()
        if self._rows is None or (self._rows_swept is not None and now - self._rows_swept < self.ROWS_SWEEP_INTERVAL):
            return
        self._rows_swept = now
        try:
            gone = await asyncio.to_thread(self._rows.sweep)
        except Exception as e:  # noqa: BLE001 - the database busy or away: the next interval tries again
            log.warning("could not sweep expired session rows: %s", type(e).__name__)
            return
        if gone:
            log.info("deleted %d expired session rows left by a server with shared sessions", gone)

    @property
    def shared(self) -> bool:
        return False

    async def seal(self, packed: Any, diagnostics: Any, model: Any = None) -> bytes | None:
        return None

    async def open(self, org: str, target: tuple[str, str] | None, environment: str, evaluation: Evaluation,
                   duration: float, entries: list[AuditEntry]) -> Session:
        # Audited first: a session exists only once the log says it was opened.
        await self._audit(entries, [])
        return self._memory.new(org, target, environment, evaluation, duration)

    async def get(self, org: str, target: tuple[str, str] | None, sid: str) -> Session:
        return self._memory.get(org, target, sid)


class DatabaseSessionStore(_ProcessSessions):
    """Sessions in the database for every process on it, cached in the memory of the process
    that opened (or last loaded) them."""

    __slots__ = ("_rows", "_cipher")

    def __init__(self, limits: SessionLimits, audit: Audit, rows: SessionRows, cipher: AesGcmCipher) -> None:
        super().__init__(limits, audit)
        self._rows = rows
        self._cipher = cipher

    @property
    def shared(self) -> bool:
        return True

    async def seal(self, packed: Any, diagnostics: Any, model: Any = None) -> bytes | None:
        # Pickling and encrypting are as large as the value (bounded by the budget): off the loop.
        return await asyncio.to_thread(seal, self._cipher.encrypt, packed, diagnostics, model)

    async def open(self, org: str, target: tuple[str, str] | None, environment: str, evaluation: Evaluation,
                   duration: float, entries: list[AuditEntry]) -> Session:
        """The row is committed with the audit ``entries`` in one transaction (the audit
        writer's group commit): durable together, one fsync for every open meanwhile."""
        if evaluation.sealed is None:
            packed = await asyncio.to_thread(pack_value, evaluation.value)
            evaluation.sealed = await self.seal(packed, evaluation.diagnostics, evaluation.model)
        assert evaluation.sealed is not None
        sid = pysecrets.token_hex(16)
        now = time.time()
        row = SessionRow(id_hash(sid), org, target[0] if target else None, target[1] if target else None,
                         environment, now, now + duration, evaluation.value_id, evaluation.size)
        await self._audit(entries, [(row, evaluation.sealed)])
        return self._memory.new(org, target, environment, evaluation, duration, sid=sid)

    async def get(self, org: str, target: tuple[str, str] | None, sid: str) -> Session:
        """From memory while the row still exists (it may have expired or been evicted by
        another process), else read, decrypted and unpacked once, and cached here."""
        h = id_hash(sid)
        row = await asyncio.to_thread(self._rows.get, h) if self._rows.remote else self._rows.get(h)
        if row is None or row.org != org or row.target != target:
            raise SessionGone(_GONE)
        if row.expires <= time.time():
            raise SessionGone(_EXPIRED)
        try:
            return self._memory.get(org, target, sid)
        except SessionGone:
            pass
        rows, decrypt = self._rows, self._cipher.decrypt

        def load() -> tuple[bytes, Any, Any, Any] | None:
            payload = rows.payload(row.value_id)
            if payload is None:
                return None
            packed, diagnostics, model = unseal(decrypt, payload)
            return payload, unpack_value(packed), diagnostics, model

        # As large as the value (bounded by the budget): off the loop.
        loaded = await asyncio.to_thread(load)
        if loaded is None:
            raise SessionGone("open session not found: it expired or was evicted; open the environment again")
        payload, value, diagnostics, model = loaded
        evaluation = Evaluation(value, diagnostics, (), None, row.size, value_id=row.value_id, sealed=payload,
                                model=model)
        # SessionTooLarge when this process's budget is smaller than the one that opened it.
        return self._memory.new(org, target, row.environment, evaluation, row.expires - time.time(), sid=sid)

    async def sweep(self) -> None:
        await super().sweep()
        try:
            await asyncio.to_thread(self._rows.sweep)
        except Exception as e:  # noqa: BLE001 - the database away: the next second tries again
            log.warning("could not sweep expired sessions: %s", type(e).__name__)


def choose_session_store(store: Store, limits: SessionLimits, cipher: AesGcmCipher, audit: Audit,
                         shared: bool) -> SessionStore:
    """The database store when other processes must read the sessions (``shared``, or a store
    other than SQLite: PostgreSQL is there for several replicas), else memory. ``audit`` is the
    server's durable audit write; for the database store it must commit the session rows it is
    given with the entries (the audit writer does: see :mod:`.audit`)."""
    if shared or not isinstance(store, SQLiteStore):
        return DatabaseSessionStore(limits, audit, session_rows(store), cipher)
    return MemorySessionStore(limits, audit, session_rows(store))
