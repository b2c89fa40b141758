"""Point reads of a SQLite catalog on the calling thread, for the hot paths.

Every other catalog call runs in anyio's worker threads (store/threads.py): the hop there and
back, with SQLAlchemy's connection checkout and result machinery, costs about ten times a
primary-key read of a local SQLite file whose pages the kernel holds (bench/README.md, "16 KiB
signed downloads"), and more under load, when the hop waits for a thread and then for the GIL. A
signed download needs one such row, a device's upload two (its credential, its organization's
usage), so they are read here, through the DB-API on a read-only connection of the thread's own,
with the statement SQLAlchemy compiles from the same table definitions (:class:`PointRead`).

The read never waits for a lock: in WAL mode a reader does not wait for writers, and in the
rare cases SQLite still answers "busy" (a WAL file being recovered or reset) :class:`Busy` is
raised and the caller reads through the worker threads, which wait as every catalog call does.
Only SQLite files have this path; PostgreSQL and in-memory catalogs return None from
:meth:`SqlitePointReads.of`, and :class:`PointRead` reads them in the worker threads.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
import weakref
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.sql import Select

from assetfiles.store.threads import in_lane

#: one instance per engine, so the stores share the calling thread's connection
_OF_ENGINE: weakref.WeakKeyDictionary[Engine, SqlitePointReads | None] = weakref.WeakKeyDictionary()


class Busy(Exception):
    """SQLite could not read at once; read through the worker threads instead."""


class SqlitePointReads:
    def __init__(self, database: Path) -> None:
        self._uri = database.absolute().as_uri() + "?mode=ro"
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    @classmethod
    def of(cls, engine: Engine) -> SqlitePointReads | None:
        """Point reads for the engine's catalog when it is a SQLite file, else None (one per engine)."""
        if engine not in _OF_ENGINE:
            database = engine.url.database
            plain_file = (
                engine.dialect.name == "sqlite"
                and bool(database)
                and database != ":memory:"
                and not str(database).startswith("file:")  # a URI the engine passes on to SQLite
            )
            _OF_ENGINE[engine] = cls(Path(str(database))) if plain_file else None
        return _OF_ENGINE[engine]

    def all(self, statement: CompiledRead, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """The statement's rows; :class:`Busy` when SQLite cannot read at once."""
        try:
            cursor = self._connection().execute(statement.sql, statement.parameters(params))
            return cursor.fetchall()
        except sqlite3.OperationalError as exc:
            raise Busy(str(exc)) from exc

    def close(self) -> None:
        with self._lock:
            for connection in self._opened:
                connection.close()
            self._opened.clear()
        self._local = threading.local()

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            # autocommit (no transaction held between reads, so each sees the newest commit);
            # busy_timeout 0: never wait on the calling thread, which is the event loop's
            connection = sqlite3.connect(self._uri, uri=True, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA busy_timeout=0")
            self._local.connection = connection
            with self._lock:
                self._opened.append(connection)
        return connection


class CompiledRead:
    """A SQLAlchemy select compiled once for SQLite: its text and its parameters' order."""

    def __init__(self, statement: Select[Any]) -> None:
        from sqlalchemy.dialects import sqlite

        compiled = statement.compile(dialect=sqlite.dialect())
        self.sql = str(compiled)
        self._order = tuple(compiled.positiontup or ())

    def parameters(self, params: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(params[name] for name in self._order)


class PointRead:
    """A read of a few rows by an index, made on the calling thread from a SQLite file and in the
    worker threads (the caller's lane) otherwise, or when SQLite is busy.

    Rows are plain tuples of the DB-API's values, so the statement's columns must be ones whose
    SQLite values need no conversion (strings, integers, nulls)."""

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement
        self._sqlite = CompiledRead(statement)

    async def rows(self, engine: Engine, **params: Any) -> list[tuple[Any, ...]]:
        reads = SqlitePointReads.of(engine)
        if reads is not None:
            try:
                return reads.all(self._sqlite, params)
            except Busy:
                pass
        return await in_lane(functools.partial(self._read, engine, params))

    async def first(self, engine: Engine, **params: Any) -> tuple[Any, ...] | None:
        found = await self.rows(engine, **params)
        return found[0] if found else None

    def _read(self, engine: Engine, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(self.statement, params)]
