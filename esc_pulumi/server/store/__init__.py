"""Where the server keeps environments, revisions, tags, tokens, the audit log and open
sessions, behind the :class:`Store` protocol: :class:`SQLiteStore` is the embedded
implementation (one machine), :class:`~.postgres.PostgresStore` the one several replicas share.

Example::

    store = open_store(Path("esc-data"), None)                          # SQLite in esc-data/esc.db
    store = open_store(Path("esc-data"), "postgresql://esc@db/esc")      # PostgreSQL
"""
from pathlib import Path

from .base import (
    LATEST,
    AuditEntry,
    Conflict,
    Invalid,
    Unavailable,
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


def open_store(data_dir: Path, database: str | None, *, create: bool = True, **options: object) -> Store:
    """The store of a server: PostgreSQL when ``database`` is a ``postgresql://`` URL, else
    SQLite in ``<data_dir>/esc.db``; :class:`~esc_pulumi.errors.EscError` for any other URL."""
    from ...errors import EscError
    from .postgres import PostgresStore, is_postgres_url

    if database:
        if not is_postgres_url(database):
            raise EscError("--database takes a PostgreSQL URL (postgresql://user@host:5432/dbname); "
                           "without it the server keeps its data in SQLite in --data")
        return PostgresStore(database, **options)  # type: ignore[arg-type]
    db = Path(data_dir) / "esc.db"
    if not create and not db.exists():
        raise FileNotFoundError(str(db))
    return SQLiteStore(db, create=create)

__all__ = [
    "LATEST",
    "AuditEntry",
    "Conflict",
    "Invalid",
    "Unavailable",
    "open_store",
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
