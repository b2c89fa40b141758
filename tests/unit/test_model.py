"""Rules with no database, socket or server: identifiers, timestamps, LIKE escaping, signing, secrets."""

from __future__ import annotations

import time

import pytest

from assetfiles.errors import BadInput, Forbidden
from assetfiles.model import ChannelId, DeviceRef, iso_to_ms, ms_to_iso
from assetfiles.service.secrets import hash_device_secret, verify_device_secret
from assetfiles.service.signing import UrlSigner
from assetfiles.store.sql import glob_to_like


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
