"""A full disk on every upload path: 507 in each face's own format, nothing stored, no temporary
file left, and the same upload succeeding once there is room again.

The data directory is a small tmpfs mounted by the test (root only: skipped elsewhere), so the
disk really fills up under a real server: no error is simulated.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.backends import local_blobs_only
from tests.e2e.test_enos import GQL_TOKEN, access_token, enos_document, enos_files, post_integration
from tests.helpers import Server, md5hex, seed_and_start, temporaries

pytestmark = local_blobs_only
BIG = 3 * 1024 * 1024
ROOM = 1024 * 1024


def _mount_tmpfs(path: Path, size: str) -> str | None:
    """Mount a tmpfs at ``path``; the reason it cannot be done, or None."""
    if os.geteuid() != 0:
        return "mounting a small tmpfs needs root"
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    return None if result.returncode == 0 else f"mount -t tmpfs failed: {result.stderr.strip()}"


@pytest.fixture
def full_disk_server(tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    data = tmp_path / "data"
    data.mkdir()
    reason = _mount_tmpfs(data, "16m")
    if reason:
        pytest.skip(reason)
    server: Server | None = None
    try:
        server = seed_and_start(tmp_path, enos_document(), enos_files())
        filler = data / "filler"
        stats = os.statvfs(data)
        filler.write_bytes(b"\0" * (stats.f_bavail * stats.f_frsize - ROOM))
        yield server, filler
    finally:
        if server is not None:
            server.stop()
        subprocess.run(["umount", "-l", str(data)], check=False)


def _a2_count(server: Server) -> int:
    query = '{ assetContents(filters: {association: {type: "asset", id: "a2"}}) { totalCount } }'
    count: int = server.data(query, token=GQL_TOKEN)["assetContents"]["totalCount"]
    return count


def test_a_full_disk_is_507_on_every_upload_path_and_loses_nothing(
    full_disk_server: tuple[Server, Path],
) -> None:
    server, filler = full_disk_server
    data = os.urandom(BIG)
    digest = hashlib.sha256(data).hexdigest()
    before = _a2_count(server)

    # 1. GraphQL createContentUpload, then the PUT of the bytes to the signed URL.
    created = server.data(
        """mutation($i: ContentUploadInput!) { createContentUpload(input: $i) { uploadUrl } }""",
        {"i": {"name": "big.bin", "associations": [{"type": "asset", "id": "a2"}], "length": BIG,
               "sha256": digest}},
        token=GQL_TOKEN,
    )["createContentUpload"]  # fmt: skip
    put = httpx.put(created["uploadUrl"], content=data, timeout=30)
    assert put.status_code == 507, put.text
    error = put.json()["error"]
    assert error["code"] == "INSUFFICIENT_STORAGE" and "disk is full" in error["message"]

    # 2. A device's own upload.
    device = httpx.put(
        f"{server.base_url}/api/devices/p1/d1/content",
        params={"name": "dump.bin"},
        content=data,
        headers={"Authorization": "Device d1-secret-0123"},
        timeout=30,
    )
    assert device.status_code == 507, device.text
    assert device.json()["error"]["code"] == "INSUFFICIENT_STORAGE"

    # 3. An EnOS multi-file upload: the envelope carries the status.
    halves = {"one.bin": data[: BIG // 2], "two.bin": data[BIG // 2 :]}
    message = {
        "params": [{"assetId": "a2", "attributes": {"a": "local://one.bin", "b": "local://two.bin"}}],
        "files": {
            name: {"featureId": feature, "assetId": "a2", "md5": md5hex(part)}
            for (name, part), feature in zip(halves.items(), ("a", "b"), strict=True)
        },
    }
    enos = post_integration(server, access_token(server), "postAttribute", message, halves)
    assert enos.status_code == 507, enos.text
    assert enos.json()["code"] == 507 and "disk is full" in enos.json()["msg"]

    assert _a2_count(server) == before
    assert temporaries(server.data_dir) == []

    # Room again: the same signed URL now takes the same bytes (the reservation was kept).
    filler.unlink()
    retried = httpx.put(created["uploadUrl"], content=data, timeout=30)
    assert retried.status_code == 201, retried.text
    assert _a2_count(server) == before + 1
    assert temporaries(server.data_dir) == []
