"""What every SQL store shares: LIKE escaping, the dialect-neutral upsert, the count of pending rows.

Each store (principals, assets, contents, uploads, quotas, ...) owns one aggregate's tables and
writes ordinary blocking SQLAlchemy Core; its public methods run whole in a worker thread (see
:func:`assetfiles.store.threads.in_thread`): one hop between the event loop and a thread per
call however many statements it makes. Every method that reads or writes an organization's
objects takes its ``org_id`` and puts it in the WHERE clause, so that isolation does not
depend on the caller remembering to check.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import ColumnElement, Table, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection


def escape_like(text: str) -> str:
    """``text`` as a literal inside a LIKE pattern escaped with ``\\``."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def glob_to_like(pattern: str) -> str:
    """Translate a shell glob (``*``, ``?``) to a LIKE pattern escaped with ``\\``."""
    return escape_like(pattern).replace("*", "%").replace("?", "_")


def upsert(conn: Connection, table: Table) -> Any:
    """An INSERT that can take ``ON CONFLICT`` clauses, in the connection's dialect (SQLite or
    PostgreSQL both have them, under the same SQLAlchemy API)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def pending_and_retry_after(
    conn: Connection, expires_at: ColumnElement[int], where: ColumnElement[bool], now: int
) -> tuple[int, int]:
    """How many rows ``where`` selects (reservations, unfinished uploads), and the seconds until
    the soonest of them expires (at least 1): the Retry-After of a caller refused at a limit."""
    count, soonest = conn.execute(select(func.count(), func.min(expires_at)).where(where)).one()
    return count, max(1, math.ceil((soonest - now) / 1000)) if soonest is not None else 1
