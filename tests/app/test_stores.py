"""Store adapters in process, on real files and a real database: the blob directory, the migrations."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine

from assetfiles.errors import IntegrityMismatch, PayloadTooLarge
from assetfiles.store.blobs import LocalBlobStore
from assetfiles.store.database import create_engine as create_catalog_engine
from assetfiles.store.database import migrate, normalize_url
from assetfiles.store.schema import metadata
from tests.backends import BACKEND, catalog_url


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def test_blob_store_writes_verifies_and_deduplicates(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    data = b"a" * 3_000_000

    async def scenario() -> None:
        blob = await store.write(
            _chunks(data[:1000], data[1000:]),
            max_length=10**9,
            expected_length=len(data),
            expected_sha256=hashlib.sha256(data).hexdigest(),
        )
        assert blob.sha256 == hashlib.sha256(data).hexdigest()
        assert store.local_path(blob.sha256).read_bytes() == data
        again = await store.write(_chunks(data), max_length=10**9)
        assert again == blob
        with pytest.raises(IntegrityMismatch):
            await store.write(_chunks(b"xyz"), max_length=100, expected_sha256="0" * 64)
        with pytest.raises(IntegrityMismatch):
            await store.write(_chunks(b"xyz"), max_length=100, expected_length=2)
        with pytest.raises(PayloadTooLarge):
            await store.write(_chunks(b"x" * 101), max_length=100)

        async def used() -> bool:
            return True

        async def unused() -> bool:
            return False

        assert not await store.remove_unless(blob.sha256, used)
        assert await store.remove_unless(blob.sha256, unused)
        assert not store.local_path(blob.sha256).exists()

    asyncio.run(scenario())
    assert list((tmp_path / "tmp").iterdir()) == []  # no temporary file survives
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files == []


def test_local_path_refuses_non_digests(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        LocalBlobStore(tmp_path).local_path("../../etc/passwd")


def test_migrations_create_exactly_the_schema(tmp_path: Path) -> None:
    database = tmp_path / "m.sqlite3"
    migrate(f"sqlite:///{database}")
    migrate(f"sqlite:///{database}")  # idempotent
    engine = create_engine(f"sqlite:///{database}")
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    assert differences == []


@pytest.mark.skipif(BACKEND != "postgres", reason="runs with ASSETFILES_TEST_BACKEND=postgres")
def test_migrations_create_exactly_the_schema_on_postgresql(tmp_path: Path) -> None:
    url = catalog_url(tmp_path / "pg")
    migrate(url)
    migrate(url)  # idempotent
    engine = create_engine(normalize_url(url))
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    engine.dispose()
    assert differences == []


def test_counts_migration_backfills_existing_rows(tmp_path: Path) -> None:
    from alembic import command

    from assetfiles.store.database import alembic_config

    url = f"sqlite:///{tmp_path / 'c.sqlite3'}"
    command.upgrade(alembic_config(url), "0001")
    engine = create_engine(f"sqlite:///{tmp_path / 'c.sqlite3'}")
    with engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO organizations VALUES ('o', 'O', 0)")
        for pk in (1, 2, 3):
            connection.exec_driver_sql(
                "INSERT INTO contents (pk, id, org_id, name, content_type, type, length, sha256, md5,"
                " creator_kind, created_at, updated_at)"
                " VALUES (?, ?, 'o', 'n', 't/t', 'file', 1, 's', 'm', 'user', 0, 0)",
                (pk, f"c{pk}"),
            )
            connection.exec_driver_sql(
                "INSERT INTO content_associations VALUES (?, 'asset', ?, 'o', 0, 0, 'n', 1, 't/t')",
                (pk, "a1" if pk < 3 else "a2"),
            )
    migrate(url)
    with engine.connect() as connection:
        counts = connection.exec_driver_sql(
            "SELECT target_id, contents FROM association_counts ORDER BY target_id"
        ).all()
    assert [tuple(row) for row in counts] == [("a1", 2), ("a2", 1)]


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Engine]:
    """A migrated catalog of the backend under test, as the server opens it."""
    url = catalog_url(tmp_path / "catalog")
    migrate(url)
    engine = create_catalog_engine(url)
    yield engine
    engine.dispose()


def test_a_device_digest_is_kept_only_for_the_credential_that_was_checked(catalog: Engine) -> None:
    """The fast check's digest is written for the scrypt hash that was verified: if the secret was
    replaced meanwhile the write does nothing, and replacing a secret clears the digest."""
    from assetfiles.model import DeviceRef
    from assetfiles.store.principals import PrincipalStore

    store, device = PrincipalStore(catalog), DeviceRef("p1", "d1")

    async def scenario() -> None:
        await store.upsert_organization("o-1", "One")
        await store.upsert_device("o-1", device, "scrypt$aa$first")
        await store.remember_device_digest("o-1", device, "scrypt$aa$first", "d" * 64)
        assert [(c.org_id, c.secret_digest) for c in await store.find_devices(device)] == [("o-1", "d" * 64)]
        await store.upsert_device("o-1", device, "scrypt$bb$second")  # a new secret: no digest yet
        assert (await store.find_devices(device))[0].secret_digest is None
        await store.remember_device_digest("o-1", device, "scrypt$aa$first", "e" * 64)  # checked the old one
        assert (await store.find_devices(device))[0].secret_digest is None

    asyncio.run(scenario())


def test_device_messages_remembered_together_keep_the_first_answer_and_skip_revoked_sessions(
    catalog: Engine,
) -> None:
    """Remembered answers are group-committed: a message already remembered keeps its first answer,
    and a message whose session was revoked meanwhile is skipped without failing the others."""
    from assetfiles.model import DeviceRef, DeviceSession
    from assetfiles.store.principals import PrincipalStore

    store, device = PrincipalStore(catalog), DeviceRef("p1", "d1")

    async def scenario() -> None:
        await store.upsert_organization("o-1", "One")
        await store.upsert_device("o-1", device, "scrypt$aa$first")
        for digest in ("s-kept", "s-revoked"):
            await store.open_device_session(digest, DeviceSession("o-1", device, "enos", 1, 10**13), 16)
        await store.remember_device_message("s-kept", "m-0", "f-0", '"first"', 2)
        await store.revoke_device_sessions("o-1", device, "other")  # another protocol's: none
        await asyncio.gather(
            store.remember_device_message("s-kept", "m-0", "f-other", '"second"', 3),
            store.remember_device_message("s-kept", "m-1", "f-1", '"one"', 3),
            store.remember_device_message("s-revoked", "m-2", "f-2", '"two"', 3),
            store.remember_device_message("s-kept", "m-3", "f-3", '"three"', 3),
        )
        assert await store.find_device_message("s-kept", "m-0") == ("f-0", '"first"')
        assert await store.find_device_message("s-kept", "m-1") == ("f-1", '"one"')
        assert await store.find_device_message("s-kept", "m-3") == ("f-3", '"three"')
        assert await store.find_device_message("s-revoked", "m-2") == ("f-2", '"two"')

        # now the session goes while its message is being remembered with others'
        with catalog.begin() as conn:
            from sqlalchemy import delete

            from assetfiles.store.schema import device_sessions

            conn.execute(delete(device_sessions).where(device_sessions.c.digest == "s-revoked"))
        await asyncio.gather(
            store.remember_device_message("s-revoked", "m-4", "f-4", '"four"', 4),
            store.remember_device_message("s-kept", "m-5", "f-5", '"five"', 4),
        )
        assert await store.find_device_message("s-revoked", "m-4") is None
        assert await store.find_device_message("s-kept", "m-5") == ("f-5", '"five"')
        found = await store.find_device_session("s-kept")
        assert found is not None and (found.device, found.expires_at) == (device, 10**13)
        assert await store.find_device_session("s-revoked") is None

    try:
        asyncio.run(scenario())
    finally:
        store.writes.close()


def test_reservations_and_completions_made_together_keep_their_rules(catalog: Engine) -> None:
    """Reservations and their completions are group-committed: in one group the pending limit still
    counts the reservations before each, and a reservation completed twice makes one content."""
    from assetfiles.model import Content, Creator, CreatorKind, now_ms
    from assetfiles.store.contents import ContentStore
    from assetfiles.store.group_commit import GroupCommit
    from assetfiles.store.principals import PrincipalStore
    from assetfiles.store.uploads import TooManyPending, UploadStore

    writes = GroupCommit(catalog)
    store, contents = UploadStore(catalog, writes), ContentStore(catalog, writes)
    later = now_ms() + 600_000

    def content(content_id: str) -> Content:
        return Content(content_id, "o-1", f"{content_id}.bin", "application/octet-stream", "file", 1,
                       "0" * 64, "0" * 32, Creator(CreatorKind.TOKEN, "t"), 1, 1)  # fmt: skip

    async def scenario() -> None:
        await PrincipalStore(catalog, writes).upsert_organization("o-1", "One")
        reserved = await asyncio.gather(
            *(store.insert_upload(f"u-{n}", "o-1", {"n": n}, later, max_pending=2) for n in range(3)),
            return_exceptions=True,
        )
        assert reserved[:2] == [None, None] and isinstance(reserved[2], TooManyPending)
        assert await store.get_upload("u-1", "o-1") == {"n": 1}
        assert await store.get_upload("u-1", "o-other") is None
        assert await store.get_upload("u-2", "o-1") is None

        done = await asyncio.gather(
            store.complete_upload("u-0", content("c-0")),
            store.complete_upload("u-0", content("c-0-again")),
            store.complete_upload("u-1", content("c-1")),
        )
        assert list(done) == [True, False, True]
        assert await contents.get_content("o-1", "c-0") is not None
        assert await contents.get_content("o-1", "c-0-again") is None
        assert await store.get_upload("u-0", "o-1") is None

    try:
        asyncio.run(scenario())
    finally:
        writes.close()
