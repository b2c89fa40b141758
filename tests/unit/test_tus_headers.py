"""The tus headers' grammar: Upload-Metadata and Upload-Checksum, refused with the header's name."""

from __future__ import annotations

import base64
import hashlib

import pytest

from assetfiles.errors import BadInput
from assetfiles.server.tus import parse_checksum, parse_metadata
from assetfiles.service.resumable import MAX_METADATA_BYTES


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_metadata_pairs_decode_and_a_key_may_have_no_value() -> None:
    header = f"filename {b64('clip ünïcode.mp4')}, asset {b64('a-1')},is_confidential"
    assert parse_metadata(header) == {"filename": "clip ünïcode.mp4", "asset": "a-1", "is_confidential": None}
    assert parse_metadata(None) == {} and parse_metadata("  ") == {}


@pytest.mark.parametrize(
    ("header", "field"),
    [
        (f"filename {b64('a')},filename {b64('b')}", "Upload-Metadata"),  # twice
        ("filename !!!", "Upload-Metadata.filename"),  # not base64
        (
            f"filename {base64.b64encode(bytes([0xFF, 0xFE])).decode()}",
            "Upload-Metadata.filename",
        ),  # not UTF-8
        (f"ключ {b64('x')}", "Upload-Metadata"),  # key not ASCII
        (",", "Upload-Metadata"),  # empty key
        ("k " + "A" * MAX_METADATA_BYTES, "Upload-Metadata"),  # too long
    ],
)
def test_bad_metadata_names_the_header(header: str, field: str) -> None:
    with pytest.raises(BadInput) as refused:
        parse_metadata(header)
    assert refused.value.field == field


@pytest.mark.parametrize("algorithm", ["sha1", "md5", "sha256"])
def test_checksums_of_each_algorithm(algorithm: str) -> None:
    digest = hashlib.new(algorithm, b"chunk").digest()
    parsed = parse_checksum(f"{algorithm} {base64.b64encode(digest).decode()}")
    assert (parsed.algorithm, parsed.digest) == (algorithm, digest)


@pytest.mark.parametrize(
    "header",
    ["crc32 AAAAAA==", "sha1 !!!", "sha1 " + base64.b64encode(b"short").decode(), "sha256", ""],
)
def test_bad_checksums_are_refused(header: str) -> None:
    with pytest.raises(BadInput) as refused:
        parse_checksum(header)
    assert refused.value.field == "Upload-Checksum"
