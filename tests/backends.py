"""Which catalog the integration suite runs on: SQLite (default) or PostgreSQL.

``ASSETFILES_TEST_BACKEND=postgres`` gives every data directory of the suite its own fresh
PostgreSQL database (on ``ASSETFILES_TEST_POSTGRES``, default the local server at
127.0.0.1:5432), passed to the CLI and to servers as ``ASSETFILES_DATABASE_URL``. .ci/run runs
the suite once per backend.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from sqlalchemy import MetaData, create_engine, select, text

from assetfiles.store.database import normalize_url

BACKEND = os.environ.get("ASSETFILES_TEST_BACKEND", "sqlite")
POSTGRES = os.environ.get("ASSETFILES_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
PREFIX = "aftest_"
_created: set[str] = set()


def _server_url(database: str) -> str:
    base, _, _ = POSTGRES.rpartition("/")
    return f"{base}/{database}"


def catalog_url(data_dir: Path) -> str:
    """The catalog URL the suite uses for ``data_dir`` (creating the PostgreSQL database once)."""
    if BACKEND == "sqlite":
        return f"sqlite:///{data_dir.resolve() / 'catalog.sqlite3'}"
    if BACKEND != "postgres":
        raise RuntimeError(f"ASSETFILES_TEST_BACKEND={BACKEND!r}: expected sqlite or postgres")
    name = PREFIX + hashlib.sha1(str(data_dir.resolve()).encode(), usedforsecurity=False).hexdigest()[:20]
    if name not in _created:
        engine = create_engine(normalize_url(POSTGRES), isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        _created.add(name)
    return _server_url(name)


def backend_env(data_dir: Path) -> dict[str, str]:
    return {} if BACKEND == "sqlite" else {"ASSETFILES_DATABASE_URL": catalog_url(data_dir)}


def drop_test_databases() -> None:
    """Remove the databases of earlier runs (PostgreSQL only)."""
    if BACKEND != "postgres":
        return
    engine = create_engine(normalize_url(POSTGRES), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        names = connection.execute(
            text("SELECT datname FROM pg_database WHERE datname LIKE :prefix"), {"prefix": PREFIX + "%"}
        ).scalars()
        for name in list(names):
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def catalog_text(data_dir: Path) -> str:
    """Every value of every table of the catalog, as text: for "nothing is stored in clear" checks."""
    engine = create_engine(normalize_url(catalog_url(data_dir)))
    metadata = MetaData()
    metadata.reflect(engine)
    parts: list[str] = []
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            parts.extend(repr(tuple(row)) for row in connection.execute(select(table)))
    engine.dispose()
    return "\n".join(parts)
