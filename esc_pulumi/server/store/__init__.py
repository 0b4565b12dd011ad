"""Where the server keeps environments, revisions, tags, tokens and the audit log, behind the
:class:`Store` protocol; :class:`SQLiteStore` is the embedded implementation."""
from .base import (
    LATEST,
    AuditEntry,
    Conflict,
    EnvironmentInfo,
    EnvTag,
    NotFound,
    Revision,
    RevisionTag,
    Store,
    StoreError,
    TokenRecord,
    decode_page_token,
    encode_page_token,
    iso_at,
    now_iso,
    parse_iso,
)
from .sqlite import SQLiteStore

__all__ = [
    "LATEST",
    "AuditEntry",
    "Conflict",
    "EnvTag",
    "EnvironmentInfo",
    "NotFound",
    "Revision",
    "RevisionTag",
    "SQLiteStore",
    "Store",
    "StoreError",
    "TokenRecord",
    "decode_page_token",
    "encode_page_token",
    "iso_at",
    "now_iso",
    "parse_iso",
]
