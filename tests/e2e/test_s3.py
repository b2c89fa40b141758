"""Blobs in S3-compatible object storage: a real S3 server (SeaweedFS) on loopback.

Uploads stream through Python into multipart uploads; downloads are URLs presigned by the
store, so the bytes never pass through Python, and SeaweedFS checks every presigned signature:
a URL bent in any way is refused by the object store itself.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.backends import BLOBS, object_store
from tests.helpers import Server, run_cli, seed_and_start, sha256

#: The whole suite runs again on S3 in .ci/run (ASSETFILES_TEST_BLOBS=s3); these S3-specific checks
#: run there, which keeps the default pass fast.
pytestmark = pytest.mark.skipif(BLOBS != "s3", reason="runs in the S3 pass (ASSETFILES_TEST_BLOBS=s3)")

TOKEN = "tok-s3-rw-0123456789"
BUCKET = "assetfiles-test"
PREFIX = "blobs"
SEEDED = random.Random(3).randbytes(300_000)


@pytest.fixture(scope="module")
def s3_env() -> dict[str, str]:
    store = object_store()
    if BUCKET not in {entry["Name"] for entry in store.client().list_buckets().get("Buckets", [])}:
        store.client().create_bucket(Bucket=BUCKET)
    return store.env(f"s3://{BUCKET}/{PREFIX}")


@pytest.fixture(scope="module")
def s3_server(s3_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    document = {"organizations": [{"id": "o-s3",
        "tokens": [{"name": "rw", "secret": TOKEN, "permissions": ["read", "write"]}],
        "applications": [{"app_key": "ak-s3", "app_secret": "as-s3-secret-0123", "policies": ["asset:read"]}],
        "assets": [{"id": "a", "name": "A", "content": [{"path": "files/seeded.bin",
                    "name": "seeded file.bin", "enos_category": "feature"}]}]}]}  # fmt: skip
    server = seed_and_start(
        tmp_path_factory.mktemp("s3-world"), document, {"files/seeded.bin": SEEDED}, env=s3_env
    )
    yield server
    server.stop()


def bucket(s3_env: dict[str, str]) -> Any:
    return object_store().client()


def keys(s3_env: dict[str, str]) -> set[str]:
    listed = bucket(s3_env).list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return {item["Key"] for item in listed}


def blob_key(data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    return f"{PREFIX}/{digest[:2]}/{digest[2:4]}/{digest}"


LISTING = (
    '{ assetContents(filters: {association: {type: "asset", id: "a"}}) { assetContents { id name url } } }'
)


def urls(server: Server) -> dict[str, dict[str, str]]:
    items = server.data(LISTING, token=TOKEN)["assetContents"]["assetContents"]
    return {item["name"]: item for item in items}


def upload(server: Server, name: str, data: bytes, declared: str | None = None) -> httpx.Response:
    ticket = server.data(
        "mutation($i: ContentUploadInput!) { createContentUpload(input: $i) { id uploadUrl } }",
        {"i": {"name": name, "length": len(data), "sha256": declared or sha256(data),
               "associations": [{"type": "asset", "id": "a"}]}},
        token=TOKEN,
    )["createContentUpload"]  # fmt: skip
    return httpx.put(ticket["uploadUrl"], content=data, timeout=60)


def test_seeded_bytes_live_in_the_bucket_and_urls_are_presigned(
    s3_server: Server, s3_env: dict[str, str]
) -> None:
    assert blob_key(SEEDED) in keys(s3_env)
    assert not (s3_server.data_dir / "blobs").exists() or not any(
        (s3_server.data_dir / "blobs").rglob("*" * 1)
    )
    url = urls(s3_server)["seeded file.bin"]["url"]
    assert url.startswith(s3_env["AWS_ENDPOINT_URL"]) and "Signature" in url and "Expires" in url
    whole = httpx.get(url)
    assert whole.status_code == 200 and whole.content == SEEDED
    assert "seeded file.bin" in whole.headers["content-disposition"]
    ranged = httpx.get(url, headers={"Range": "bytes=0-1023"})
    assert ranged.status_code == 206 and ranged.content == SEEDED[:1024]


def test_multipart_upload_through_python_then_presigned_download(
    s3_server: Server, s3_env: dict[str, str]
) -> None:
    data = random.Random(5).randbytes(20 * 1024 * 1024 + 17)  # three parts
    response = upload(s3_server, "large.bin", data)
    assert response.status_code == 201, response.text
    assert blob_key(data) in keys(s3_env)
    assert not [key for key in keys(s3_env) if key.startswith(f"{PREFIX}/tmp/")]
    assert httpx.get(urls(s3_server)["large.bin"]["url"], timeout=60).content == data


def test_refused_upload_leaves_nothing_in_the_bucket(s3_server: Server, s3_env: dict[str, str]) -> None:
    before = keys(s3_env)
    response = upload(s3_server, "bad.bin", b"some bytes", declared="0" * 64)
    assert response.status_code == 400 and "sha256" in response.text
    assert keys(s3_env) == before


def test_delete_removes_the_object(s3_server: Server, s3_env: dict[str, str]) -> None:
    data = b"short-lived object"
    assert upload(s3_server, "gone.bin", data).status_code == 201
    assert blob_key(data) in keys(s3_env)
    content_id = urls(s3_server)["gone.bin"]["id"]
    s3_server.data("mutation($i: ID!) { deleteContent(id: $i) { id } }", {"i": content_id}, token=TOKEN)
    assert blob_key(data) not in keys(s3_env)


def test_enos_download_redirects_to_the_store(s3_server: Server) -> None:
    stamp = int(time.time() * 1000)
    body = {"appKey": "ak-s3", "timestamp": stamp,
            "encryption": hashlib.sha256(f"ak-s3{stamp}as-s3-secret-0123".encode()).hexdigest()}  # fmt: skip
    token = httpx.post(f"{s3_server.base_url}/apim-token-service/v2.0/token/get", json=body).json()["data"]
    uri = s3_server.data(
        '{ assetContents(filters: {association: {type: "asset", id: "a"}, name: "seeded*"}) '
        "{ assetContents { enos { fileUri } } } }",
        token=TOKEN,
    )["assetContents"]["assetContents"][0]["enos"]["fileUri"]
    params = {"action": "download", "orgId": "o-s3", "fileUri": uri, "category": "feature", "assetId": "a"}
    headers = {"apim-accesstoken": token["accessToken"]}
    url = f"{s3_server.base_url}/connect-service/v2.1/files"
    response = httpx.get(url, params=params, headers=headers, follow_redirects=True)
    assert response.status_code == 200 and response.content == SEEDED


def test_sync_mirrors_from_an_s3_backed_server(s3_server: Server, tmp_path: Path) -> None:
    result = run_cli("sync", "a", str(tmp_path), "--url", s3_server.base_url, "--token", TOKEN, "--json")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "a/user/seeded file.bin").read_bytes() == SEEDED
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary["failed"] == 0 and summary["downloaded"] >= 1


def test_gc_and_fsck_on_the_bucket(s3_server: Server, s3_env: dict[str, str]) -> None:
    env = {**s3_env, "ASSETFILES_SECRET_KEY": "unused-here"}
    orphan = b"an orphan object"
    bucket(s3_env).put_object(Bucket=BUCKET, Key=blob_key(orphan), Body=orphan)
    kept = run_cli("gc", "--data-dir", str(s3_server.data_dir), env=env)
    assert kept.returncode == 0 and "unreferenced but younger" in kept.stdout
    assert blob_key(orphan) in keys(s3_env)  # younger than the grace period
    collected = run_cli("gc", "--data-dir", str(s3_server.data_dir), "--grace", "0", env=env)
    assert collected.returncode == 0, collected.stderr
    assert blob_key(orphan) not in keys(s3_env) and blob_key(SEEDED) in keys(s3_env)
    healthy = run_cli("fsck", "--data-dir", str(s3_server.data_dir), "--verify", env=env)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    bucket(s3_env).put_object(Bucket=BUCKET, Key=blob_key(SEEDED), Body=b"X" * len(SEEDED))
    corrupt = run_cli("fsck", "--data-dir", str(s3_server.data_dir), "--verify", env=env)
    assert corrupt.returncode == 1 and "sha256" in corrupt.stdout
    bucket(s3_env).put_object(Bucket=BUCKET, Key=blob_key(SEEDED), Body=SEEDED)


def test_bad_blob_url_is_refused(tmp_path: Path) -> None:
    result = run_cli("serve", "--data-dir", str(tmp_path), env={"ASSETFILES_BLOB_URL": "https://bucket"})
    assert result.returncode == 2 and "blob_url" in result.stderr
