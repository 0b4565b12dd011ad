"""Writing many rows with one statement, for the stores and the session tables.

Example::

    insert_rows(db, AUDIT, [("t1", "acme", "ci", "environment.open", "p/e", "revision 1")])
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

__all__ = ["insert_rows", "Table", "AUDIT", "SESSIONS", "SESSION_VALUES"]

# SQLite builds before 3.32 bind at most 999 parameters (PostgreSQL gets one array per column).
_SQLITE_MAX_PARAMS = 999


@dataclass(frozen=True)
class Table:
    """The columns a batch writes, with their PostgreSQL types (as .migrations creates them):
    the arrays of a PostgreSQL batch are cast to them."""

    name: str
    columns: tuple[str, ...]
    pg_types: tuple[str, ...]

    def head(self) -> str:
        return f"INSERT INTO {self.name} ({', '.join(self.columns)})"


AUDIT = Table("audit", ("time", "org", "actor", "action", "target", "detail"), ("text",) * 6)
SESSION_VALUES = Table("session_values", ("id", "org", "size", "payload"), ("text", "text", "bigint", "bytea"))
SESSIONS = Table("sessions", ("id_hash", "org", "project", "env", "environment", "created", "expires", "value_id"),
                 ("text",) * 5 + ("double precision",) * 2 + ("text",))


def insert_rows(db: Any, table: Table, rows: Sequence[tuple[Any, ...]], postgres: bool = False) -> None:
    """Insert all ``rows`` (in ``table.columns`` order) with one statement, not one per row as
    ``executemany`` does: on SQLite a multi-row ``VALUES`` (a few statements past the
    parameter limit), on PostgreSQL ``unnest`` of one array per column (one statement text
    whatever the count, so psycopg parses and the server plans it once).

    Why: on SQLite every statement step lets go of the GIL, and the audit writer is a thread
    beside a busy event loop: winning the GIL back once per row made a group commit of 35
    entries take ~3 ms of waiting for ~0.3 ms of work. On PostgreSQL, ``executemany`` in a
    pipeline sends a statement per row, and psycopg handles each result holding the GIL (the
    group commit thread held it a third of the time); a ``VALUES`` list as long as the batch
    is a new statement text each time, which psycopg parses again.
    """
    if not rows:
        return
    if postgres:
        arrays = ", ".join(f"%s::{t}[]" for t in table.pg_types)
        db.execute(f"{table.head()} SELECT * FROM unnest({arrays})", [list(col) for col in zip(*rows)])
        return
    width = len(table.columns)
    per = max(1, _SQLITE_MAX_PARAMS // width)
    one = "(" + ",".join("?" * width) + ")"
    for i in range(0, len(rows), per):
        chunk = rows[i:i + per]
        db.execute(f"{table.head()} VALUES {','.join([one] * len(chunk))}", [x for row in chunk for x in row])
