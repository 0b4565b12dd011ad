"""Writing many rows with few statements, for the stores and the session tables."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

__all__ = ["insert_rows", "SQLITE", "POSTGRES", "Dialect"]


@dataclass(frozen=True)
class Dialect:
    placeholder: str
    max_params: int  # bound parameters one statement may have


# SQLite builds before 3.32 bind at most 999 parameters; PostgreSQL's protocol 65,535.
SQLITE = Dialect("?", 999)
POSTGRES = Dialect("%s", 65_535)


def insert_rows(db: Any, head: str, rows: Sequence[tuple[Any, ...]], dialect: Dialect = SQLITE) -> None:
    """Run ``head`` (``INSERT INTO t (a, b)``) for all ``rows`` as one multi-row statement (a few
    when the parameter limit is reached), not one statement per row as ``executemany`` does.

    Why: on SQLite every statement step lets go of the GIL. The audit writer is a thread beside
    a busy event loop, and winning the GIL back once per row made a group commit of 35 entries
    take ~3 ms of waiting for ~0.3 ms of work. On PostgreSQL, ``executemany`` in a pipeline
    sends a statement per row and psycopg handles each one's result, holding the GIL: the
    group commit thread held it a third of the time, most of that in the pipeline's results.

    Example::

        insert_rows(db, "INSERT INTO audit (time, org)", [("t1", "acme"), ("t2", "acme")])
    """
    if not rows:
        return
    width = len(rows[0])
    per = max(1, dialect.max_params // width)
    one = "(" + ",".join([dialect.placeholder] * width) + ")"
    for i in range(0, len(rows), per):
        chunk = rows[i:i + per]
        db.execute(f"{head} VALUES {','.join([one] * len(chunk))}", [x for row in chunk for x in row])
