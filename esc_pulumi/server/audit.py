"""The audit log's writer: entries are durable before the request that made them is answered.

Opens and decrypts reveal plaintext, so their audit entries must survive anything that happens
after the client got its answer, a SIGKILL included. Each such entry is committed (SQLite,
``synchronous=FULL``: fsynced) before the request gets its response. One fsync per open would
cap the server at a few hundred opens a second, so the writer does a *group commit*: a thread of
its own takes every entry that arrived while the previous commit was on its way to the disk
and writes them in one transaction. Under load a batch holds as many entries as there are
requests waiting; idle, an entry waits for one commit only.

Denied requests (401/403) are written the same way but not waited for: an attacker's flood of
bad tokens must neither slow the answers nor hold memory, so at most ``max_backlog`` of them
wait (the rest are counted, and the count is written as one ``audit.dropped`` entry).

The writer also carries the tokens' last-used times: noted in memory on every request, written
with the next batch or within ``touch_seconds`` (a last-used time may be that much late, and a
SIGKILL loses at most that much of it).

Example::

    writer = AuditWriter(store)
    writer.start()
    await writer.write([AuditEntry(now_iso(), "acme", "ci", "environment.open", "app/dev", "revision 3")])
    writer.close()
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from .store import AuditEntry, Store, now_iso

__all__ = ["AuditWriter", "AuditUnavailable"]

log = logging.getLogger("esc_pulumi.server")


class AuditUnavailable(Exception):
    """The audit log could not be written; the request that needed it must fail."""


@dataclass
class _Pending:
    entries: list[AuditEntry]
    future: asyncio.Future[None] | None
    loop: asyncio.AbstractEventLoop | None
    sessions: list[tuple[Any, bytes]] = field(default_factory=list)


@dataclass
class AuditWriter:
    """Group-committing writer of audit entries over ``store`` (ideally a connection of its
    own: the commit's fsync then never holds the connection the requests read through)."""

    store: Store
    # The open sessions' rows (.shared_sessions.SessionRows on the same store) and their bounds,
    # when sessions are shared (.session_store; None when they live in memory): a session
    # written with write(..., sessions=) is committed in the same transaction as the entries,
    # so the group commit carries both.
    session_rows: Any = None
    session_limits: Any = None
    touch_seconds: float = 5.0
    max_backlog: int = 10_000
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _pending: list[_Pending] = field(default_factory=list)
    _background: int = 0
    _dropped: int = 0
    _touches: dict[str, str] = field(default_factory=dict)
    _touched_at: float = 0.0
    _thread: threading.Thread | None = None
    _stop: bool = False

    def start(self) -> None:
        """Start the writing thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="esc-pulumi-audit", daemon=True)
            self._thread.start()

    async def write(self, entries: Sequence[AuditEntry], sessions: Sequence[tuple[Any, bytes]] = ()) -> None:
        """Return once ``entries`` (and ``sessions``: ``(SessionRow, payload)``) are committed
        to disk; :class:`AuditUnavailable` if they could not be written."""
        if self._thread is None or self._stop:
            # No writer thread (used outside a running server): write here and now.
            try:
                if sessions:
                    await asyncio.to_thread(self.session_rows.commit, list(entries), None, list(sessions),
                                            self.session_limits)
                else:
                    await asyncio.to_thread(self.store.append_audit, list(entries))
            except Exception:
                log.exception("could not write %d audit entries", len(entries))
                raise AuditUnavailable() from None
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        # Retrieved even when nobody awaits it any more (the client left): no "never retrieved" noise.
        fut.add_done_callback(lambda f: f.cancelled() or f.exception())
        with self._cond:
            self._pending.append(_Pending(list(entries), fut, loop, list(sessions)))
            self._cond.notify()
        # shield: a client that leaves does not un-write its entry; the request just stops waiting.
        await asyncio.shield(fut)

    def write_soon(self, entry: AuditEntry) -> None:
        """Queue ``entry`` without waiting for it (denied requests); bounded by ``max_backlog``."""
        with self._cond:
            if self._background >= self.max_backlog:
                self._dropped += 1
                return
            self._background += 1
            self._pending.append(_Pending([entry], None, None))
            self._cond.notify()
        if self._thread is None:
            self._drain()

    def touch(self, token_hash: str) -> None:
        """Note that a token was used now (written within ``touch_seconds``)."""
        t = now_iso()
        with self._cond:
            self._touches[token_hash] = t

    def close(self) -> None:
        """Write everything still waiting and stop the thread."""
        with self._cond:
            self._stop = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None
        self._drain()

    # -- the writing thread -------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stop and not self._touch_due():
                    self._cond.wait(timeout=self._wait_time())
                if self._stop and not self._pending:
                    return
            self._drain()

    def _touch_due(self) -> bool:
        return bool(self._touches) and time.monotonic() - self._touched_at >= self.touch_seconds

    def _wait_time(self) -> float | None:
        if not self._touches:
            return 1.0
        return max(0.01, self.touch_seconds - (time.monotonic() - self._touched_at))

    def _drain(self) -> None:
        """Commit what is waiting, as one transaction, and answer its waiters."""
        with self._cond:
            batch, self._pending = self._pending, []
            background = sum(1 for p in batch if p.future is None)
            self._background -= background
            dropped, self._dropped = self._dropped, 0
            touches: dict[str, str] = {}
            if self._touches:
                touches, self._touches = self._touches, {}
                self._touched_at = time.monotonic()
        entries = [e for p in batch for e in p.entries]
        if dropped:
            entries.append(AuditEntry(now_iso(), "-", "server", "audit.dropped", "-",
                                      f"{dropped} denied requests not logged: too many at once"))
        if not entries and not touches:
            return
        sessions = [x for p in batch for x in p.sessions]
        error = False
        try:
            if sessions:
                self.session_rows.commit(entries, touches, sessions, self.session_limits)
            else:
                self.store.append_audit(entries, touches)
        except Exception:  # disk full, database locked for too long: the waiting requests fail
            log.exception("could not write %d audit entries", len(entries))
            error = True
        # One wake-up of each event loop for all its waiters (a batch holds many opens).
        by_loop: dict[Any, list[asyncio.Future[None]]] = {}
        for p in batch:
            if p.future is not None and p.loop is not None:
                by_loop.setdefault(p.loop, []).append(p.future)
        for loop, futures in by_loop.items():
            loop.call_soon_threadsafe(_settle, futures, error)


def _settle(futures: list[asyncio.Future[None]], error: bool) -> None:
    for fut in futures:
        if fut.done():  # cancelled meanwhile
            continue
        if error:
            fut.set_exception(AuditUnavailable())
        else:
            fut.set_result(None)
