"""Which catalog and blob store the integration suite runs on.

``ASSETFILES_TEST_BACKEND=postgres`` gives every data directory of the suite its own fresh
PostgreSQL database (on ``ASSETFILES_TEST_POSTGRES``, default the local server at
127.0.0.1:5432), passed to the CLI and to servers as ``ASSETFILES_DATABASE_URL``.
``ASSETFILES_TEST_BLOBS=s3`` gives each its own bucket on a real S3 server (SeaweedFS, started on
loopback by the suite: tests/objectstore.py), passed as ``ASSETFILES_BLOB_URL`` with the standard
AWS variables.
.ci/run runs the suite on SQLite + local blobs, then on PostgreSQL + S3.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, create_engine, select, text

from assetfiles.store.database import normalize_url
from tests import objectstore
from tests.objectstore import ObjectStore

BACKEND = os.environ.get("ASSETFILES_TEST_BACKEND", "sqlite")
BLOBS = os.environ.get("ASSETFILES_TEST_BLOBS", "local")
_s3: dict[str, Any] = {}
POSTGRES = os.environ.get("ASSETFILES_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
#: Each pytest-xdist worker has databases of its own (and drops only its own at start).
_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
PREFIX = f"aftest_{_WORKER}_" if _WORKER else "aftest_"
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
    name = PREFIX + _digest(data_dir)
    if name not in _created:
        engine = create_engine(normalize_url(POSTGRES), isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        _created.add(name)
    return _server_url(name)


def _digest(data_dir: Path) -> str:
    return hashlib.sha1(str(data_dir.resolve()).encode(), usedforsecurity=False).hexdigest()[:20]


def object_store() -> ObjectStore:
    """The suite's S3 server (one per pytest-xdist worker), started on first use, stopped at exit."""
    if "store" not in _s3:
        directory = Path(tempfile.mkdtemp(prefix="assetfiles-seaweedfs-"))
        started = objectstore.start(directory)
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        atexit.register(started.stop)
        _s3["store"], _s3["client"] = started, started.client()
    store: ObjectStore = _s3["store"]
    return store


def s3_client() -> Any:
    """A boto3 client of the suite's S3 server."""
    object_store()
    return _s3["client"]


def bucket_of(data_dir: Path) -> str:
    name = "aftest-" + _digest(data_dir)
    if name not in _created:
        s3_client().create_bucket(Bucket=name)
        _created.add(name)
    return name


def backend_env(data_dir: Path) -> dict[str, str]:
    env = {} if BACKEND == "sqlite" else {"ASSETFILES_DATABASE_URL": catalog_url(data_dir)}
    if BLOBS == "s3":
        env.update(object_store().env(f"s3://{bucket_of(data_dir)}/blobs"))
    return env


def stored_objects(data_dir: Path) -> set[str]:
    """Everything the blob store holds for ``data_dir``: blobs and temporary uploads."""
    if BLOBS == "s3":
        listed = s3_client().list_objects_v2(Bucket=bucket_of(data_dir)).get("Contents", [])
        return {item["Key"].removeprefix("blobs/") for item in listed}
    root = data_dir / "blobs"
    return {str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()}


def stored_blobs(data_dir: Path) -> set[str]:
    """The sha256 of every committed blob of ``data_dir``."""
    return {
        name.rsplit("/", 1)[-1]
        for name in stored_objects(data_dir)
        if not name.startswith(("tmp/", "resumable/"))
    }


local_blobs_only = pytest.mark.skipif(
    BLOBS != "local",
    reason="about the local blob directory (nginx, planted files); S3 has tests/e2e/test_s3.py",
)


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
