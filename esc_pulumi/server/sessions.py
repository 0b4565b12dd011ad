"""Open sessions: what an open returned, kept in memory (it holds plaintext) until it expires.

A session lives for the duration its open asked for (``?duration=``, default
:data:`DEFAULT_DURATION`, at most ``SessionLimits.max_duration``) and is dropped then, read
or not (:meth:`Sessions.sweep` runs every second). Memory is bounded three ways:

- ``max_bytes``: the estimated memory of every session together (an evaluation shared by
  several sessions of an organisation is counted once);
- ``max_org_bytes``: what one organisation's sessions may hold;
- ``max_sessions``: their number.

When a new session does not fit, the expired ones go first, then the oldest sessions of the
organisation that holds the most beyond its fair share (the budget divided among the
organisations that have sessions), so a busy or hostile organisation evicts its own sessions,
not its neighbours'. One session larger than an organisation's budget is refused
(:class:`SessionTooLarge`).

Example::

    sessions = Sessions(SessionLimits(max_bytes=64 << 20))
    s = sessions.new("acme", ("proj", "dev"), "proj/dev", evaluation, duration=3600)
    sessions.get("acme", ("proj", "dev"), s.id).value
"""
from __future__ import annotations

import heapq
import secrets as pysecrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

from ..esc import Value
from ..esc.diagnostics import Diagnostic

__all__ = ["DEFAULT_DURATION", "MAX_DURATION", "Evaluation", "Session", "SessionGone", "SessionLimits",
           "SessionTooLarge", "Sessions", "estimate_size"]

MiB = 1 << 20
# The Pulumi CLI opens for 2 h (``yaml/open?duration=2h0m0s``); an open without a duration gets
# the same here.
DEFAULT_DURATION = 2 * 3600.0
MAX_DURATION = 24 * 3600.0
# What a session costs beyond its evaluation: the record, its id, the dictionaries' slots.
SESSION_OVERHEAD = 512
# Measured (tracemalloc) for unpacked values: a node is ~160-200 bytes of Value, list or dict
# slot and key; the scalars' text comes on top.
NODE_BYTES = 200


def estimate_size(nodes: int, text_bytes: int, body_bytes: int, model_bytes: int = 0) -> int:
    """The memory an opened value holds: its nodes, the text of its strings, the body of a
    whole-session read once it is built (kept for the next reader; it holds the detailed
    model) and the model's parts kept beside it (:attr:`Evaluation.model`)."""
    return nodes * NODE_BYTES + text_bytes + body_bytes + model_bytes


@dataclass
class Evaluation:
    """An opened value, shared by the sessions that opened the same revisions (memory only).

    ``deps`` are the imports as the loader resolved them: ``(name as written, env id, revision)``;
    a cached evaluation is reused only while every one of them still resolves the same way.
    ``size`` is its estimated memory in bytes (:func:`estimate_size`).
    """

    value: Value = field(repr=False)
    diagnostics: list[Diagnostic]
    deps: tuple[tuple[str, int, int], ...]
    body: bytes | None = field(default=None, repr=False)
    size: int = 0
    # The row of the value in the database's session_values (see .shared_sessions): its id,
    # shared by the sessions of this evaluation, and its encrypted payload once made.
    value_id: str = field(default_factory=lambda: pysecrets.token_hex(16), repr=False)
    sealed: bytes | None = field(default=None, repr=False)
    # The detailed model's other parts (``exprs``, ``schema``, ``executionContext``), each as
    # its JSON: a whole-session read returns them with the properties, and the database row
    # keeps them for other replicas. None: a row sealed before sessions kept them.
    model: dict[str, bytes] | None = field(default=None, repr=False)
    # ``deps`` parsed, once (see EscServer._still_valid): (reference, (env id, revision)).
    dep_refs: tuple[tuple[Any, tuple[int, int]], ...] | None = field(default=None, repr=False)


@dataclass
class Session:
    """An opened environment (plaintext secrets live in memory only)."""

    id: str = field(repr=False)  # the id is the capability to read the session: never shown
    org: str
    target: tuple[str, str] | None  # (project, env); None for an anonymous yaml/open
    environment: str  # the name traces fall back to
    evaluation: Evaluation = field(repr=False)
    expires: float

    @property
    def value(self) -> Value:
        return self.evaluation.value


@dataclass(frozen=True)
class SessionLimits:
    """The bounds of the open sessions (see the module docstring). ``max_org_bytes`` None: the
    whole budget (the fair-share rule still keeps organisations apart)."""

    max_bytes: int = 256 * MiB
    max_org_bytes: int | None = None
    max_sessions: int = 10_000
    default_duration: float = DEFAULT_DURATION
    max_duration: float = MAX_DURATION

    @property
    def org_bytes(self) -> int:
        return self.max_bytes if self.max_org_bytes is None else min(self.max_org_bytes, self.max_bytes)


class SessionGone(Exception):
    """No such session for this organisation and environment, or it expired (message for the client)."""


class SessionTooLarge(Exception):
    """One session would need more memory than an organisation may hold (message for the client)."""


class Sessions:
    """The open sessions, bounded by :class:`SessionLimits` (a bare number: ``max_sessions``)."""

    def __init__(self, limits: SessionLimits | int = SessionLimits(), clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.limits = limits if isinstance(limits, SessionLimits) else SessionLimits(max_sessions=limits)
        self._clock = clock
        self._by_id: dict[str, Session] = {}
        self._by_org: dict[str, OrderedDict[str, Session]] = {}  # oldest first
        self._usage: dict[str, int] = {}  # org -> bytes
        self._refs: dict[int, int] = {}  # id(evaluation) -> sessions holding it (within its org)
        self._expiry: list[tuple[float, str]] = []  # heap of (expires, id)
        self.total = 0
        # Estimated bytes given up by expiry and eviction since the owner last looked (the
        # server returns freed memory to the system when this grows: see app.trim_memory).
        self.freed = 0

    def __len__(self) -> int:
        return len(self._by_id)

    def usage(self, org: str) -> int:
        """The estimated bytes ``org``'s sessions hold."""
        return self._usage.get(org, 0)

    def _cost(self, evaluation: Evaluation) -> int:
        return SESSION_OVERHEAD + (0 if self._refs.get(id(evaluation)) else evaluation.size)

    def new(self, org: str, target: tuple[str, str] | None, environment: str, evaluation: Evaluation,
            duration: float, sid: str | None = None) -> Session:
        """A new session, making room as the module docstring says; :class:`SessionTooLarge`.
        ``sid``: the id (a session the database already holds); default a new random one."""
        now = self._clock()
        self.sweep(now)
        lim = self.limits
        self.check_size(evaluation)
        while self._by_org.get(org) and self.usage(org) + self._cost(evaluation) > lim.org_bytes:
            self._evict_oldest(org)
        while self._by_id and (self.total + self._cost(evaluation) > lim.max_bytes
                               or len(self._by_id) >= lim.max_sessions):
            self._evict_oldest(self._most_over_share(org))
        if sid is not None and sid in self._by_id:
            self._remove(self._by_id[sid])
        s = Session(sid or pysecrets.token_hex(16), org, target, environment, evaluation, now + duration)
        cost = self._cost(evaluation)
        self._by_id[s.id] = s
        self._by_org.setdefault(org, OrderedDict())[s.id] = s
        self._refs[id(evaluation)] = self._refs.get(id(evaluation), 0) + 1
        self._usage[org] = self.usage(org) + cost
        self.total += cost
        heapq.heappush(self._expiry, (s.expires, s.id))
        return s

    def check_size(self, evaluation: Evaluation) -> None:
        """:class:`SessionTooLarge` if a session of ``evaluation`` could never fit."""
        budget = self.limits.org_bytes
        if SESSION_OVERHEAD + evaluation.size > budget:
            raise SessionTooLarge(
                f"the opened environment needs about {_mb(evaluation.size)} of memory, more than an "
                f"organization's open sessions may hold ({_mb(budget)}): open less at once")

    def get(self, org: str, target: tuple[str, str] | None, sid: str) -> Session:
        s = self._by_id.get(sid)
        if s is None or s.org != org or s.target != target:
            raise SessionGone("open session not found: it expired, was evicted or never existed; open the "
                              "environment again")
        if s.expires <= self._clock():
            self._remove(s)
            raise SessionGone("open session has expired: open the environment again")
        return s

    def sweep(self, now: float | None = None) -> int:
        """Drop every expired session; returns how many went."""
        now = self._clock() if now is None else now
        gone = 0
        while self._expiry and self._expiry[0][0] <= now:
            _, sid = heapq.heappop(self._expiry)
            s = self._by_id.get(sid)
            if s is not None and s.expires <= now:
                self._remove(s)
                gone += 1
        # Evicted sessions leave stale heap items behind; rebuild when they dominate.
        if len(self._expiry) > 2 * len(self._by_id) + 64:
            self._expiry = [(s.expires, s.id) for s in self._by_id.values()]
            heapq.heapify(self._expiry)
        return gone

    # -- eviction ---------------------------------------------------------------------------

    def _most_over_share(self, newcomer: str) -> str:
        orgs = set(self._by_org) | {newcomer}
        share = self.limits.max_bytes / len(orgs)
        holders = [o for o in self._by_org if self._by_org[o]]
        return max(holders, key=lambda o: self.usage(o) - share)

    def _evict_oldest(self, org: str) -> None:
        sessions = self._by_org[org]
        _, s = next(iter(sessions.items()))
        self._remove(s)

    def _remove(self, s: Session) -> None:
        del self._by_id[s.id]
        org_sessions = self._by_org[s.org]
        del org_sessions[s.id]
        key = id(s.evaluation)
        refs = self._refs[key] - 1
        cost = SESSION_OVERHEAD
        if refs:
            self._refs[key] = refs
        else:
            del self._refs[key]
            cost += s.evaluation.size
        self._usage[s.org] -= cost
        self.total -= cost
        self.freed += cost
        if not org_sessions:
            del self._by_org[s.org]
            del self._usage[s.org]


def _mb(n: int) -> str:
    return f"{n / MiB:.3g} MB" if n >= MiB else f"{n / 1024:.3g} KB"
