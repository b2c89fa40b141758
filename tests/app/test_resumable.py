"""Resumable uploads in process: expiry and gc, and what a completed upload leaves behind."""

from __future__ import annotations

import base64

from sqlalchemy import update

from assetfiles.service.composition import Services
from assetfiles.store.schema import resumable_uploads
from tests.backends import BLOBS, bucket_of, s3_client, stored_objects
from tests.conftest import RW
from tests.inprocess import InProcessServer

TUS = {"Tus-Resumable": "1.0.0", "Authorization": f"Automation {RW}"}
PATCH = {**TUS, "Content-Type": "application/offset+octet-stream"}


def _create(server: InProcessServer, length: int, name: str) -> str:
    metadata = (
        f"filename {base64.b64encode(name.encode()).decode()},asset {base64.b64encode(b'a-empty').decode()}"
    )
    created = server.post(f"{server.base_url}/files/", headers={**TUS, "Upload-Length": str(length),
                                                                "Upload-Metadata": metadata})  # fmt: skip
    assert created.status_code == 201, created.text
    return str(created.headers["location"])


def _spooled(server: InProcessServer, upload_id: str) -> set[str]:
    """The spool's files or objects of an upload, and on S3 its multipart uploads in progress."""
    found = {name for name in stored_objects(server.data_dir) if upload_id in name}
    if BLOBS == "s3":
        listed = s3_client().list_multipart_uploads(Bucket=bucket_of(server.data_dir)).get("Uploads", [])
        found |= {f"multipart:{item['Key']}" for item in listed if upload_id in item["Key"]}
    return found


def test_an_expired_upload_is_gone_and_gc_reclaims_its_bytes(server: InProcessServer) -> None:
    services: Services = server.app.state.services
    url = _create(server, 100, "expiring.bin")
    upload_id = url.rsplit("/", 1)[1]
    first = b"x" * 60
    answer = server.request("PATCH", url, content=first, headers={**PATCH, "Upload-Offset": "0"})
    assert answer.status_code == 204, answer.text
    assert _spooled(server, upload_id)
    report = server._portal.call(lambda: services.maintenance.gc(grace_seconds=3600))
    assert report.expired_uploads == 0  # not yet
    with services.stores.engine.begin() as conn:  # its time is up
        conn.execute(
            update(resumable_uploads).where(resumable_uploads.c.id == upload_id).values(expires_at=1)
        )
    assert server.head(url, headers=TUS).status_code == 410
    gone = server.request(
        "PATCH", url, content=b"x" * 40, headers={**PATCH, "Upload-Offset": str(len(first))}
    )
    assert gone.status_code == 410 and "expired" in gone.text
    dry = server._portal.call(lambda: services.maintenance.gc(grace_seconds=3600, dry_run=True))
    assert dry.expired_uploads >= 1 and _spooled(server, upload_id)
    report = server._portal.call(lambda: services.maintenance.gc(grace_seconds=3600))
    assert report.expired_uploads >= 1
    assert server.head(url, headers=TUS).status_code == 404
    assert not _spooled(server, upload_id)


def test_a_completed_upload_leaves_no_spool(server: InProcessServer) -> None:
    data = bytes(range(256)) * 4000
    url = _create(server, len(data), "complete.bin")
    upload_id = url.rsplit("/", 1)[1]
    for offset in range(0, len(data), 300_000):
        chunk = data[offset : offset + 300_000]
        answer = server.request("PATCH", url, content=chunk, headers={**PATCH, "Upload-Offset": str(offset)})
        assert answer.status_code == 204, answer.text
    assert "upload-content-id" in answer.headers
    assert not _spooled(server, upload_id)
