"""Tokens and roles of the server.

A token is ``escp_`` + 32 random bytes (URL-safe base64); only its SHA-256 is stored. Roles are
ordered: ``reader`` < ``opener`` < ``editor`` < ``admin``; each may do what the ones before may.

A token may expire (``new_token(..., lifetime=90 * 86400)``, ``serve token create --expires
90d``) and may be revoked (``serve token revoke``); a running server sees either within a
second (it re-reads a token's record at most every :data:`TOKEN_RECHECK_SECONDS`).

Example::

    token, record = new_token("acme", "opener", name="ci", lifetime=parse_lifetime("90d"))
    store.add_token(record)
    allows(record.role, "open")      # True
    allows(record.role, "update")    # False
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time

from .store import TokenRecord, iso_at

__all__ = ["ROLES", "TOKEN_RECHECK_SECONDS", "hash_token", "new_token", "allows", "role_needed",
           "parse_lifetime", "valid_token_name"]

# How long a running server trusts the token record it read: a revocation or an expiry made
# by another process (``serve token revoke``) takes effect within this (plus one request).
TOKEN_RECHECK_SECONDS = 0.5

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@+-]{0,99}\Z")
_LIFETIME_PART = re.compile(r"(\d+)([smhdw])")
_LIFETIME_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_LIFETIME = 10 * 366 * 86400

ROLES = ("reader", "opener", "editor", "admin")
_RANK = {r: i for i, r in enumerate(ROLES)}

# What each action needs. reader: list and read definitions (secrets stay ciphertext);
# opener: open sessions and decrypt; editor: create, update, tag, clone; admin: delete.
_ACTIONS = {
    "read": "reader",
    "open": "opener",
    "decrypt": "opener",
    "write": "editor",
    "delete": "admin",
}

TOKEN_PREFIX = "escp_"


def hash_token(token: str) -> str:
    """The stored form of a token (SHA-256, hex). Tokens are random, so no salt or KDF is needed."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token(org: str, role: str, name: str | None = None, lifetime: float | None = None
              ) -> tuple[str, TokenRecord]:
    """A fresh token and the record to store for it; ``lifetime`` in seconds (None: it never
    expires)."""
    if role not in _RANK:
        raise ValueError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    if name is not None and not valid_token_name(name):
        raise ValueError(f"invalid token name {name!r}: use letters, digits and '_.@+-', at most 100")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    h = hash_token(token)
    now = time.time()
    expires = iso_at(now + lifetime) if lifetime is not None else None
    return token, TokenRecord(h, org, role, name or f"{role}-{h[:8]}", iso_at(now), expires)


def valid_token_name(name: str) -> bool:
    """Token names are printable words (they appear in the audit log and in listings)."""
    return bool(_NAME.match(name))


def parse_lifetime(text: str) -> float:
    """Seconds in a token lifetime such as ``90d``, ``12h``, ``2w``, ``1d12h`` (units s, m, h,
    d, w); :class:`ValueError` with what to write otherwise.

    Example::

        parse_lifetime("90d")   # 7776000.0
    """
    s = text.strip().lower()
    total, pos = 0, 0
    while pos < len(s):
        m = _LIFETIME_PART.match(s, pos)
        if m is None:
            break
        total += int(m.group(1)) * _LIFETIME_UNITS[m.group(2)]
        pos = m.end()
    if not s or pos != len(s):
        raise ValueError(f"invalid lifetime {text!r}: write a number and a unit, such as 90d, 12h or 2w")
    if total <= 0:
        raise ValueError(f"invalid lifetime {text!r}: it must be longer than 0")
    if total > MAX_LIFETIME:
        raise ValueError(f"invalid lifetime {text!r}: at most 10 years")
    return float(total)


def role_needed(action: str) -> str:
    return _ACTIONS[action]


def allows(role: str, action: str) -> bool:
    """Whether ``role`` may perform ``action`` (read, open, decrypt, write, delete)."""
    return _RANK.get(role, -1) >= _RANK[_ACTIONS[action]]


def same_token(a: str, b: str) -> bool:
    return hmac.compare_digest(a, b)
