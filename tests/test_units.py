"""Units with no server: identifiers, signing, the blob store, the migrations."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from assetfiles.errors import BadInput, Forbidden, IntegrityMismatch, PayloadTooLarge
from assetfiles.model import ChannelId, DeviceRef, iso_to_ms, ms_to_iso
from assetfiles.service.secrets import hash_device_secret, verify_device_secret
from assetfiles.service.signing import UrlSigner
from assetfiles.store.blobs import LocalBlobStore
from assetfiles.store.database import migrate, normalize_url
from assetfiles.store.schema import metadata
from assetfiles.store.sql import glob_to_like
from tests.backends import BACKEND, catalog_url


def test_channel_id_parses_into_device_and_channel() -> None:
    channel = ChannelId.parse("p7k2q9.pump-007.data_in.temp", field="channel")
    assert channel.device == DeviceRef("p7k2q9", "pump-007")
    assert channel.channel == "temp"
    assert str(channel) == "p7k2q9.pump-007.data_in.temp"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "p7.pump.temp",
        "p7.pump.data_out.temp",
        "p7..data_in.temp",
        "p7.pump.data_in.",
        "a.b.data_in.c.d",
        "p 7.x.data_in.t",
    ],
)
def test_malformed_channel_ids_name_the_field(value: str) -> None:
    with pytest.raises(BadInput) as caught:
        ChannelId.parse(value, field="signals[0].channel")
    assert caught.value.field == "signals[0].channel"
    assert "signals[0].channel" in caught.value.message


def test_device_ref_needs_two_parts() -> None:
    assert DeviceRef.parse("p.d", field="f") == DeviceRef("p", "d")
    with pytest.raises(BadInput):
        DeviceRef.parse("nodot", field="f")


def test_timestamps_roundtrip() -> None:
    assert iso_to_ms(ms_to_iso(1_795_000_000_123), field="t") == 1_795_000_000_123
    assert iso_to_ms("2026-01-01T00:00:00", field="t") == iso_to_ms("2026-01-01T00:00:00Z", field="t")
    with pytest.raises(BadInput):
        iso_to_ms("not a date", field="t")


def test_glob_to_like_escapes_sql_wildcards() -> None:
    assert glob_to_like("log-*.csv") == "log-%.csv"
    assert glob_to_like("a?c") == "a_c"
    assert glob_to_like("100%_x") == "100\\%\\_x"


def test_signatures_bind_action_org_object_and_expiry() -> None:
    signer = UrlSigner(b"k", 60)
    url = signer.sign(UrlSigner.DOWNLOAD, "org", "obj")
    query = dict(part.split("=") for part in url.path.split("?")[1].split("&"))
    assert signer.verify(UrlSigner.DOWNLOAD, "org", "obj", query["exp"], query["sig"]) == "org"
    for args in [
        (UrlSigner.UPLOAD, "org", "obj", query["exp"], query["sig"]),
        (UrlSigner.DOWNLOAD, "org2", "obj", query["exp"], query["sig"]),
        (UrlSigner.DOWNLOAD, "org", "obj2", query["exp"], query["sig"]),
        (UrlSigner.DOWNLOAD, "org", "obj", str(int(query["exp"]) + 1), query["sig"]),
        (UrlSigner.DOWNLOAD, "org", "obj", query["exp"], None),
    ]:
        with pytest.raises(Forbidden):
            signer.verify(*args)
    with pytest.raises(Forbidden, match="expired"):
        past = signer.sign_until(UrlSigner.DOWNLOAD, "org", "obj", int(time.time()) - 5)
        past_query = dict(part.split("=") for part in past.path.split("?")[1].split("&"))
        signer.verify(UrlSigner.DOWNLOAD, "org", "obj", past_query["exp"], past_query["sig"])
    assert (
        UrlSigner(b"other", 60).sign_until("download", "org", "obj", 1).path
        != signer.sign_until("download", "org", "obj", 1).path
    )


def test_device_secrets_are_salted_and_checked() -> None:
    first, second = hash_device_secret("s3cret-value"), hash_device_secret("s3cret-value")
    assert first != second
    assert "s3cret" not in first
    assert verify_device_secret("s3cret-value", first)
    assert not verify_device_secret("s3cret-valuE", first)
    assert not verify_device_secret("x", "garbage")


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


@pytest.mark.parametrize(
    ("name", "extension", "suffix"),
    [
        ("log.CSV", None, ".csv"),
        ("notes.csv~", None, ".bin"),
        ("archive.tar.gz", None, ".gz"),
        ("no-extension", None, ".bin"),
        ("x.txt", ".TXT", ".txt"),
        ("x.txt", "../etc", ".bin"),
        ("x.txt", "a" * 17, ".bin"),
        ("данные.csv", None, ".csv"),
        ("файл.дан", None, ".bin"),
    ],
)
def test_minted_enos_uris_always_pass_the_uri_pattern(name: str, extension: str | None, suffix: str) -> None:
    from assetfiles.model import ENOS_FILE_URI, mint_enos_uri

    for scheme in ("enos-connect", "enos-lark"):
        uri = mint_enos_uri(name, extension, scheme=scheme)
        assert ENOS_FILE_URI.fullmatch(uri) and uri.startswith(f"{scheme}://") and uri.endswith(suffix)
    assert mint_enos_uri(name) != mint_enos_uri(name)
