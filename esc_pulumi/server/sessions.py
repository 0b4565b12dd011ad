"""Open sessions: what an open returned, kept in memory (it holds plaintext) until it expires.

Example::

    sessions = Sessions(max_sessions=100)
    s = sessions.new("acme", ("proj", "dev"), "proj/dev", evaluation, duration=3600)
    sessions.get("acme", ("proj", "dev"), s.id).value
"""
from __future__ import annotations

import secrets as pysecrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from ..esc import Value
from ..esc.diagnostics import Diagnostic


@dataclass
class Evaluation:
    """An opened value, shared by the sessions that opened the same revisions (memory only).

    ``deps`` are the imports as the loader resolved them: ``(name as written, env id, revision)``;
    a cached evaluation is reused only while every one of them still resolves the same way.
    """

    value: Value = field(repr=False)
    diagnostics: list[Diagnostic]
    deps: tuple[tuple[str, int, int], ...]
    body: bytes | None = field(default=None, repr=False)


@dataclass
class Session:
    """An opened environment (plaintext secrets live in memory only)."""

    id: str
    org: str
    target: tuple[str, str] | None  # (project, env); None for an anonymous yaml/open
    environment: str  # the name traces fall back to
    evaluation: Evaluation = field(repr=False)
    expires: float

    @property
    def value(self) -> Value:
        return self.evaluation.value


class SessionGone(Exception):
    """No such session for this organisation and environment, or it expired (message for the client)."""


class Sessions:
    """The open sessions, oldest first; past ``max_sessions`` the expired and then the oldest go."""

    def __init__(self, max_sessions: int) -> None:
        self.max_sessions = max_sessions
        self._by_id: OrderedDict[str, Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._by_id)

    def new(self, org: str, target: tuple[str, str] | None, environment: str, evaluation: Evaluation,
            duration: float) -> Session:
        now = time.monotonic()
        if len(self._by_id) >= self.max_sessions:
            for sid in [sid for sid, s in self._by_id.items() if s.expires <= now]:
                del self._by_id[sid]
            while len(self._by_id) >= self.max_sessions:
                self._by_id.popitem(last=False)
        s = Session(pysecrets.token_hex(16), org, target, environment, evaluation, now + duration)
        self._by_id[s.id] = s
        return s

    def get(self, org: str, target: tuple[str, str] | None, sid: str) -> Session:
        s = self._by_id.get(sid)
        if s is None or s.org != org or s.target != target:
            raise SessionGone(f"open session {sid!r} not found")
        if s.expires <= time.monotonic():
            del self._by_id[sid]
            raise SessionGone(f"open session {sid!r} has expired: open the environment again")
        return s
