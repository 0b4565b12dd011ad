"""The request log, and text from clients made safe to put in a log line.

One line per request: method, path, status, milliseconds. Never a body, a query string (a
property path is the client's business) or a session id (the id is what lets its holder read
the session: the path of a session read is logged with ``{session}`` in its place). The path
is the client's text, decoded: control characters (a ``%0a`` would start a forged line),
backslashes and the other characters that can move a terminal's cursor are written as escapes
(:func:`escape`).

Example::

    escape("/api/esc/x\\nforged 200")   # '/api/esc/x\\\\nforged 200'
"""
from __future__ import annotations

import logging
import re
import time
from typing import Any

__all__ = ["AccessLog", "escape", "loggable_path", "redacted_path"]

access_log = logging.getLogger("esc_pulumi.server.access")

# C0 and C1 controls, DEL, the backslash (so that an escape in the output is always ours), and
# the Unicode line and paragraph separators and bidirectional overrides, which some viewers
# treat as line breaks or use to reorder what is shown.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\\\\\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def _escape_one(m: re.Match[str]) -> str:
    c = m.group(0)
    named = _NAMED.get(c)
    if named:
        return named
    n = ord(c)
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}"


def escape(text: str) -> str:
    """``text`` with control characters (and backslashes) as escapes: one log line stays one
    line, and reads as the client sent it."""
    return _UNSAFE.sub(_escape_one, text)


def redacted_path(scope: dict[str, Any]) -> str:
    """The request's path with the session id replaced by ``{session}`` (not escaped)."""
    path = scope.get("path", "")
    sid = (scope.get("path_params") or {}).get("sid")
    if sid and path.endswith(sid):
        path = path[: len(path) - len(sid)] + "{session}"
    return path


def loggable_path(scope: dict[str, Any]) -> str:
    """The request's path for a log line: escaped, the session id replaced by ``{session}``."""
    return escape(redacted_path(scope))


class AccessLog:
    """ASGI middleware: one log line per request (see the module docstring)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.state = getattr(app, "state", None)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def send_wrapper(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            # Starlette's router writes the matched path parameters into this same scope.
            access_log.info("%s %s %d %.1fms", escape(scope["method"]), loggable_path(scope), status[0],
                            (time.perf_counter() - start) * 1000)
