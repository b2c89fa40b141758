"""Engine creation and migrations for the catalog database."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, event
from sqlalchemy import create_engine as sqlalchemy_engine
from sqlalchemy.engine import make_url

from assetfiles.config import make_private_dir

MIGRATIONS = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers run beside the single writer; busy_timeout queues writers instead of failing."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _private_sqlite_file(path: Path) -> None:
    """Create the catalog file owner-only before SQLite does (its -wal and -shm files follow the
    database file's permissions), in an owner-only data directory."""
    make_private_dir(path.parent)
    if not path.exists():
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def normalize_url(url: str) -> str:
    """``postgresql://`` (and ``postgres://``) mean PostgreSQL through psycopg 3, the driver we ship;
    an explicit ``postgresql+<driver>://`` is kept as given."""
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme) :]
    return url


def create_engine(url: str) -> Engine:
    """An engine whose connections are used from anyio's worker threads (see Catalog)."""
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database:
            _private_sqlite_file(Path(parsed.database))
        # File databases get a QueuePool with check_same_thread off: a connection may serve
        # different worker threads, one at a time.
        engine = sqlalchemy_engine(url, pool_size=8, max_overflow=32)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    try:
        return sqlalchemy_engine(url, pool_size=10, max_overflow=30, pool_pre_ping=True)
    except ModuleNotFoundError as exc:
        raise RuntimeError(
            f"{parsed.get_backend_name()} needs {exc.name}: pip install 'assetfiles[postgres]'"
        ) from None


def alembic_config(url: str) -> Config:
    url = normalize_url(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(url: str) -> None:
    """Bring the catalog to the newest schema; a no-op when it is already there (blocking)."""
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        _private_sqlite_file(Path(parsed.database))
    command.upgrade(alembic_config(url), "head")


def schema_revisions(engine: Engine, timeout_seconds: float | None = None) -> tuple[str | None, str | None]:
    """(the catalog's migration revision, the newest this code knows); blocking. With
    ``timeout_seconds``, PostgreSQL gives up on a statement that waits longer (a lock held on
    ``alembic_version``, say) instead of holding the connection."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(str(engine.url))).get_current_head()
    with engine.connect() as conn:
        if timeout_seconds is not None and conn.dialect.name == "postgresql":
            # SET LOCAL: only for this transaction, so the pooled connection goes back unchanged.
            conn.exec_driver_sql(f"SET LOCAL statement_timeout = {int(timeout_seconds * 1000)}")
        current = MigrationContext.configure(conn).get_current_revision()
        conn.rollback()
    return current, head


def copy_sqlite(source: Path, target: Path) -> None:
    """Copy a live SQLite database with SQLite's online backup API: a consistent snapshot while
    writers keep going (blocking)."""
    live = sqlite3.connect(source)
    copy = sqlite3.connect(target)
    try:
        live.backup(copy)
    finally:
        copy.close()
        live.close()
