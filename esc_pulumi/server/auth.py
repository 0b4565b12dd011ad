"""Tokens and roles of the server.

A token is ``escp_`` + 32 random bytes (URL-safe base64); only its SHA-256 is stored. Roles are
ordered: ``reader`` < ``opener`` < ``editor`` < ``admin``; each may do what the ones before may.

Example::

    token, record = new_token("acme", "opener", name="ci")
    store.add_token(record)
    allows(record.role, "open")      # True
    allows(record.role, "update")    # False
"""
from __future__ import annotations

import hashlib
import hmac
import secrets

from .store import TokenRecord, now_iso

__all__ = ["ROLES", "hash_token", "new_token", "allows", "role_needed"]

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


def new_token(org: str, role: str, name: str | None = None) -> tuple[str, TokenRecord]:
    """A fresh token and the record to store for it."""
    if role not in _RANK:
        raise ValueError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    h = hash_token(token)
    return token, TokenRecord(h, org, role, name or f"{role}-{h[:8]}", now_iso())


def role_needed(action: str) -> str:
    return _ACTIONS[action]


def allows(role: str, action: str) -> bool:
    """Whether ``role`` may perform ``action`` (read, open, decrypt, write, delete)."""
    return _RANK.get(role, -1) >= _RANK[_ACTIONS[action]]


def same_token(a: str, b: str) -> bool:
    return hmac.compare_digest(a, b)
