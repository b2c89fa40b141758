"""The EnOS multipart parser: small file parts stay in memory, larger ones go to a spool directory
made only when needed, and the request's in-memory total is bounded."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from assetfiles.errors import PayloadTooLarge
from assetfiles.server.multipart import INLINE_PART_BYTES, INLINE_REQUEST_BYTES, EnosMultipart, Received

BOUNDARY = "bound4ry"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def _body(files: dict[str, bytes]) -> bytes:
    message = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="enos-message"\r\n\r\n{{"id": "1"}}\r\n'
    parts = [message.encode()]
    for name, data in files.items():
        head = (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="enos-file"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        )
        parts.append(head.encode() + data + b"\r\n")
    parts.append(f"--{BOUNDARY}--\r\n".encode())
    return b"".join(parts)


async def _chunks(body: bytes, size: int = 4096) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def _parser(spool: Path, max_file: int = 10 * 1024 * 1024) -> EnosMultipart:
    return EnosMultipart(spool, max_message=64 * 1024, max_file=max_file, prefix="enos-upload-")


def _read(parser: EnosMultipart, files: dict[str, bytes]) -> Received:
    return asyncio.run(parser.read(CONTENT_TYPE, _chunks(_body(files))))


def test_a_small_part_stays_in_memory_and_makes_no_spool_directory(tmp_path: Path) -> None:
    data = b"r" * 16384
    parser = _parser(tmp_path)
    received = _read(parser, {"a.bin": data})
    (part,) = received.files
    assert (part.data, part.path, part.length) == (data, None, len(data))
    assert (
        part.sha256 == hashlib.sha256(data).hexdigest()
        and part.md5 == hashlib.md5(data, usedforsecurity=False).hexdigest()
    )
    assert list(tmp_path.iterdir()) == []


def test_a_part_past_the_inline_size_is_spooled_whole_and_discarded(tmp_path: Path) -> None:
    small, large = b"s" * 1000, bytes(range(256)) * ((INLINE_PART_BYTES + 4096) // 256)
    parser = _parser(tmp_path)
    received = _read(parser, {"s.bin": small, "l.bin": large})
    first, second = received.files
    assert first.data == small and first.path is None
    assert second.data is None and second.path is not None
    assert second.path.read_bytes() == large  # the bytes kept before the spill are in the file too
    assert second.path.parent.name.startswith("enos-upload-") and second.path.parent.parent == tmp_path
    parser.discard()
    assert list(tmp_path.iterdir()) == []


def test_the_requests_parts_in_memory_are_bounded_together(tmp_path: Path) -> None:
    count = INLINE_REQUEST_BYTES // INLINE_PART_BYTES + 2
    files = {f"f{index}.bin": bytes([index]) * INLINE_PART_BYTES for index in range(count)}
    parser = _parser(tmp_path)
    received = _read(parser, files)
    inline = sum(len(part.data) for part in received.files if part.data is not None)
    assert inline <= INLINE_REQUEST_BYTES
    assert any(part.path is not None for part in received.files)
    for part, data in zip(received.files, files.values(), strict=True):
        assert (part.data if part.data is not None else part.path.read_bytes()) == data  # type: ignore[union-attr]
    parser.discard()


def test_a_part_over_the_file_limit_is_refused_in_memory_too(tmp_path: Path) -> None:
    parser = _parser(tmp_path, max_file=1000)
    with pytest.raises(PayloadTooLarge, match=r"a\.bin is larger than 1000 bytes") as refused:
        _read(parser, {"a.bin": b"x" * 1001})
    assert refused.value.field == "enos-file"
    assert list(tmp_path.iterdir()) == []
