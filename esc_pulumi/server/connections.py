"""Connection limits for ``esc-pulumi serve``: slow and idle clients cannot hold the server's
file descriptors.

uvicorn closes a keep-alive connection after ``timeout_keep_alive``, but it has no deadline for
a request's head or body, nor for a connection that never sends a byte, and its
``limit_concurrency`` only answers 503 once a request head is complete, so a client that
trickles a header forever holds its connection (and a file descriptor) forever. This module's
protocol (uvicorn's h11 protocol with deadlines) adds:

- ``header_timeout``: the request head (request line and headers) must arrive within this
  many seconds of the connection's opening or of its first byte after a response; otherwise
  the server answers 408 and closes;
- ``body_timeout``: the whole body within this many seconds of the head; otherwise the
  connection is closed (the request sees a disconnect);
- ``keep_alive_timeout``: an idle keep-alive connection is closed after this (uvicorn's own);
- ``max_connections``: a connection beyond this many open ones is answered 503 at once and
  closed, before it can send anything.

Each is a total deadline, not a gap between bytes: a byte a second would pass any gap timer.

Example::

    limits = ConnectionLimits(header_timeout=10, max_connections=512)
    uvicorn.Config(app, http=protocol_class(limits), timeout_keep_alive=limits.keep_alive_timeout)
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["ConnectionLimits", "protocol_class"]

log = logging.getLogger("esc_pulumi.server")

_BUSY_BODY = b'{"code":503,"message":"too many connections: try again later"}'
_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nconnection: close\r\n"
         b"retry-after: 1\r\ncontent-length: " + str(len(_BUSY_BODY)).encode() + b"\r\n\r\n" + _BUSY_BODY)
_SLOW_BODY = b'{"code":408,"message":"the request head took too long to arrive"}'
_SLOW = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
         b"content-length: " + str(len(_SLOW_BODY)).encode() + b"\r\n\r\n" + _SLOW_BODY)


@dataclass(frozen=True)
class ConnectionLimits:
    """Deadlines (seconds) and the connection cap; see the module docstring."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keep_alive_timeout: float = 5.0
    max_connections: int = 512
    max_header_bytes: int = 16 * 1024  # h11's default for a request head

    def __post_init__(self) -> None:
        for name in ("header_timeout", "body_timeout", "keep_alive_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be a positive number of seconds")
        if self.max_connections < 1:
            raise ValueError("max_connections must be at least 1")


class _Tally:
    """Counts closed connections and logs one line per ``every`` seconds at most: a flood of
    slow clients must not become a flood of log lines."""

    def __init__(self, every: float = 10.0) -> None:
        self.every = every
        self.counts: dict[str, int] = {}
        self.last = 0.0

    def add(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            summary = ", ".join(f"{n} {w}" for w, n in sorted(self.counts.items()))
            self.counts.clear()
            log.warning("closed connections: %s", summary)


def protocol_class(limits: ConnectionLimits) -> "type[H11Protocol]":
    """uvicorn's h11 protocol with ``limits`` (pass it as ``uvicorn.Config(http=...)``)."""
    # Imported here: every esc-pulumi command builds the serve parser, which reads this module.
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    tally = _Tally()

    class GuardedH11Protocol(H11Protocol):
        """H11Protocol with the deadlines and the cap of :class:`ConnectionLimits`."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._deadline: asyncio.TimerHandle | None = None
            self._phase = "idle"  # idle (between requests), head, body, app

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > limits.max_connections:
                tally.add("refused (over --max-connections)")
                transport.write(_BUSY)
                transport.close()
                return
            # A connection that never sends a byte gets the head's deadline too.
            self._arm("head", limits.header_timeout)

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._phase == "idle":
                self._arm("head", limits.header_timeout)
            super().data_received(data)
            self._follow()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            # Pipelined requests were handled by now; the keep-alive timer (uvicorn's) runs.
            if self.conn.their_state is h11.IDLE and self._phase in ("app", "body"):
                self._disarm()
                self._phase = "idle"
            self._follow()

        def _follow(self) -> None:
            """Move the deadline along with h11's view of the request."""
            state = self.conn.their_state
            if state is h11.SEND_BODY:
                # A body is on its way: this request's, or a pipelined one's (then the phase
                # was "app" or "idle" when its head was read out of the buffer).
                if self._phase != "body":
                    self._arm("body", limits.body_timeout)
            elif state in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED) and self._phase in ("head", "body"):
                self._disarm()
                self._phase = "app"  # the request is in; its evaluation has limits of its own

        def _arm(self, phase: str, seconds: float) -> None:
            self._disarm()
            self._phase = phase
            self._deadline = self.loop.call_later(seconds, self._expired, phase)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expired(self, phase: str) -> None:
            self._deadline = None
            if self.transport.is_closing():
                return
            if phase == "head":
                tally.add("timed out sending the request head")
                if self.conn.our_state is h11.IDLE:
                    self.transport.write(_SLOW)
            else:
                tally.add("timed out sending the request body")
            self.transport.close()

    return GuardedH11Protocol
