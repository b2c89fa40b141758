"""The hot paths' reads: small blobs kept in memory, catalog rows read on the caller's thread."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, create_engine, select
from sqlalchemy.pool import StaticPool

from assetfiles.store.blob_cache import SMALL_BLOB, SmallBlobCache
from assetfiles.store.point_reads import Busy, CompiledRead, PointRead, SqlitePointReads


def _blob(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_the_cache_keeps_blobs_least_recently_used_within_its_bytes(tmp_path: Path) -> None:
    cache = SmallBlobCache(max_bytes=25)
    paths = {name: _blob(tmp_path, name, name.encode() * 10) for name in ("a", "b", "c")}
    assert cache.read("a", paths["a"], 10) == b"a" * 10
    assert cache.read("b", paths["b"], 10) == b"b" * 10
    assert cache.read("a", paths["a"], 10) == b"a" * 10  # a is now the most recent
    assert cache.read("c", paths["c"], 10) == b"c" * 10  # b goes: 30 bytes would exceed 25
    assert cache.held == 20
    for name in ("a", "b", "c"):
        paths[name].unlink()
    assert cache.read("a", paths["a"], 10) == b"a" * 10
    assert cache.read("c", paths["c"], 10) == b"c" * 10
    with pytest.raises(FileNotFoundError):
        cache.read("b", paths["b"], 10)


def test_the_cache_refuses_large_blobs_short_files_and_blobs_over_its_bound(tmp_path: Path) -> None:
    large = _blob(tmp_path, "large", b"x" * (SMALL_BLOB + 1))
    assert SmallBlobCache(10 * SMALL_BLOB).read("large", large, SMALL_BLOB + 1) is None
    short = _blob(tmp_path, "short", b"x" * 5)
    cache = SmallBlobCache(1000)
    assert cache.read("short", short, 6) is None  # the file holds fewer bytes than the catalog says
    assert cache.read("short", short, 4) is None  # or more
    assert cache.held == 0
    off = SmallBlobCache(0)
    assert off.read("short", short, 5) == b"x" * 5
    assert off.held == 0  # read, never kept


_METADATA = MetaData()
_ROWS = Table("rows", _METADATA, Column("id", String, primary_key=True), Column("n", Integer))
_READ = CompiledRead(select(_ROWS.c.n).where(_ROWS.c.id == bindparam("id")))


def test_point_reads_see_every_commit_and_never_wait(tmp_path: Path) -> None:
    database = tmp_path / "catalog.sqlite3"
    engine = create_engine(f"sqlite:///{database}")
    _METADATA.create_all(engine)
    reads = SqlitePointReads.of(engine)
    assert reads is not None
    assert reads.all(_READ, {"id": "x"}) == []
    with engine.begin() as conn:
        conn.execute(_ROWS.insert().values(id="x", n=1))
    assert reads.all(_READ, {"id": "x"}) == [(1,)]
    with engine.begin() as conn:
        conn.execute(_ROWS.update().values(n=2))
    assert reads.all(_READ, {"id": "x"}) == [(2,)]
    # not in WAL mode here, a writer holding the file locks readers out: the read gives up at once
    writer = sqlite3.connect(database, isolation_level=None)
    writer.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(Busy):
            reads.all(_READ, {"id": "x"})
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert reads.all(_READ, {"id": "x"}) == [(2,)]
    reads.close()
    engine.dispose()


@pytest.mark.parametrize(
    "url", ["sqlite://", "sqlite:///:memory:", "sqlite:///file:catalog.sqlite3?uri=true"]
)
def test_catalogs_that_are_not_plain_files_have_no_point_reads(url: str) -> None:
    assert SqlitePointReads.of(create_engine(url)) is None


def test_a_point_read_that_finds_sqlite_busy_reads_in_a_worker_thread_which_waits(
    tmp_path: Path,
) -> None:
    database = tmp_path / "catalog.sqlite3"
    engine = create_engine(f"sqlite:///{database}")
    _METADATA.create_all(engine)
    with engine.begin() as conn:
        conn.execute(_ROWS.insert().values(id="x", n=7))
    read = PointRead(select(_ROWS.c.n).where(_ROWS.c.id == bindparam("id")))
    writer = sqlite3.connect(database, isolation_level=None)

    async def scenario() -> list[tuple[object, ...]]:
        writer.execute("BEGIN EXCLUSIVE")  # the point read cannot read now; the thread waits for it
        asyncio.get_running_loop().call_later(0.2, writer.execute, "ROLLBACK")
        return await read.rows(engine, id="x")

    try:
        assert asyncio.run(scenario()) == [(7,)]
        assert asyncio.run(read.first(engine, id="y")) is None
    finally:
        writer.close()
        engine.dispose()


def test_a_point_read_of_a_catalog_that_is_not_a_file_reads_through_a_worker_thread() -> None:
    engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    _METADATA.create_all(engine)
    with engine.begin() as conn:
        conn.execute(_ROWS.insert().values(id="x", n=3))
    read = PointRead(select(_ROWS.c.n).where(_ROWS.c.id == bindparam("id")))
    assert asyncio.run(read.rows(engine, id="x")) == [(3,)]
