"""tus 1.0.0 at ``/files/`` over real HTTP: core, every extension, every error status, the
credentials (token, device, device session, signed reservation) and what a completed upload
becomes (a content through both vendor faces). Runs on SQLite + local and PostgreSQL + S3."""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Iterator

import httpx
import pytest

from tests.backends import BLOBS, bucket_of, s3_client, stored_objects
from tests.cutproxy import CutProxy
from tests.e2e.test_enos import access_token, files_get
from tests.helpers import Server, device_login_sign, seed_and_start, sha256
from tests.tus import (
    AUTH,
    CHUNK_BOUND,
    DATA,
    DEVICE_SECRET,
    FOREIGN_TOKEN,
    PATCH,
    RO_TOKEN,
    TOKEN,
    TUS,
    content,
    create,
    document,
    gql,
    metadata,
    patch,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = seed_and_start(
        tmp_path_factory.mktemp("tus"),
        document(),
        {},
        {
            "ASSETFILES_RESUMABLE_MAX_PENDING_PER_DEVICE": "3",
            "ASSETFILES_RESUMABLE_MAX_CHUNK_BYTES": str(CHUNK_BOUND),
            "ASSETFILES_MAX_UPLOAD_BYTES": str(64 * 1024**2),
        },
    )
    yield running
    running.stop()


def fetch(url: str) -> bytes:
    answer = httpx.get(url, follow_redirects=True)
    assert answer.status_code == 200
    return answer.content


# -- discovery and version ----------------------------------------------------------------------


def test_options_describes_the_server(server: Server) -> None:
    answer = httpx.options(f"{server.base_url}/files/")
    assert answer.status_code == 204
    assert answer.headers["tus-version"] == "1.0.0"
    assert set(answer.headers["tus-extension"].split(",")) == {
        "creation", "creation-with-upload", "creation-defer-length", "expiration", "checksum",
        "termination", "concatenation",
    }  # fmt: skip
    assert set(answer.headers["tus-checksum-algorithm"].split(",")) == {"sha1", "md5", "sha256"}
    assert answer.headers["tus-max-size"] == str(64 * 1024**2)
    assert answer.headers["access-control-allow-origin"] == "*"
    assert "Upload-Offset" in answer.headers["access-control-allow-headers"]


def test_an_unsupported_version_is_412_with_the_supported_one(server: Server) -> None:
    for version in ({"Tus-Resumable": "0.2.2"}, {}):
        answer = httpx.post(
            f"{server.base_url}/files/",
            headers={"Authorization": f"Automation {TOKEN}", "Upload-Length": "1", **version},
        )
        assert answer.status_code == 412 and answer.headers["tus-version"] == "1.0.0"
        assert "Tus-Resumable" in answer.text


# -- core and creation ------------------------------------------------------------------------------


def test_an_upload_in_chunks_becomes_a_content(server: Server) -> None:
    created = create(server, len(DATA), tags='{"camera": "north"}')
    assert created.status_code == 201, created.text
    url = created.headers["location"]
    assert url.startswith(server.base_url + "/files/")
    assert "upload-expires" in created.headers
    head = httpx.head(url, headers=AUTH)
    assert head.status_code == 200
    assert head.headers["upload-offset"] == "0" and head.headers["upload-length"] == str(len(DATA))
    assert head.headers["cache-control"] == "no-store"
    assert head.headers["upload-metadata"].startswith("filename ")
    offset = 0
    for size in (100_000, 100_000, 100_000):
        answer = patch(url, offset, DATA[offset : offset + size])
        assert answer.status_code == 204, answer.text
        offset += size
        assert answer.headers["upload-offset"] == str(offset)
    content_id = answer.headers["upload-content-id"]
    found = content(server, content_id)
    assert (found["name"], found["length"], found["sha256"]) == ("clip.bin", len(DATA), sha256(DATA))
    assert (
        found["md5"] == hashlib.md5(DATA, usedforsecurity=False).hexdigest() and found["uploadedVia"] == "tus"
    )
    assert fetch(found["url"]) == DATA
    listed = gql(server, '{ assetContents(filters: {association: {type: "asset", id: "a1"}}) '
                         "{ assetContents { id tags { name value } } } }")  # fmt: skip
    mine = [c for c in listed["data"]["assetContents"]["assetContents"] if c["id"] == content_id]
    assert mine and mine[0]["tags"] == [{"name": "camera", "value": "north"}]
    done = httpx.head(url, headers=AUTH)
    assert done.headers["upload-offset"] == str(len(DATA)) and done.headers["upload-content-id"] == content_id


def test_an_upload_with_an_enos_category_is_an_enos_file_too(server: Server) -> None:
    body = b"feature values\n" * 100
    answer = httpx.post(
        f"{server.base_url}/files/",
        content=body,
        headers={**PATCH, "Upload-Length": str(len(body)),
                 "Upload-Metadata": metadata(filename="f.csv", asset="a1", enosCategory="feature")},
    )  # fmt: skip
    assert answer.status_code == 201, answer.text
    found = gql(server, "query($id: ID!) { content(id: $id) { enos { fileUri category } } }",
                {"id": answer.headers["upload-content-id"]})["data"]["content"]  # fmt: skip
    assert found["enos"]["category"] == "feature"
    params = {"orgId": "o-tus", "assetId": "a1", "fileUri": found["enos"]["fileUri"], "category": "feature"}
    downloaded = files_get(server, access_token(server, "ak-rw"), **params)
    assert downloaded.status_code == 200 and downloaded.content == body
    wrong = create(server, 1, enosCategory="firmware")
    assert wrong.status_code == 400 and "enosCategory" in wrong.text


def test_creation_with_upload_in_one_request(server: Server) -> None:
    body = b"log line\n" * 1000
    answer = httpx.post(
        f"{server.base_url}/files/",
        content=body,
        headers={
            **PATCH,
            "Upload-Length": str(len(body)),
            "Upload-Metadata": metadata(filename="a.log", asset="a1"),
        },
    )
    assert answer.status_code == 201, answer.text
    assert answer.headers["upload-offset"] == str(len(body))
    assert content(server, answer.headers["upload-content-id"])["sha256"] == sha256(body)


def test_a_whole_upload_in_its_creation_request_is_checked_like_any(server: Server) -> None:
    """The body is the whole upload (Content-Length = Upload-Length): straight to the blob store,
    with every check, and nothing kept when one fails."""
    body = b"whole reading\n" * 1000
    whole = {
        **PATCH,
        "Upload-Length": str(len(body)),
        "Upload-Metadata": metadata(filename="whole.txt", asset="a1"),
    }
    other = base64.b64encode(hashlib.sha1(b"other", usedforsecurity=False).digest()).decode()
    damaged = httpx.post(
        f"{server.base_url}/files/", content=body, headers={**whole, "Upload-Checksum": f"sha1 {other}"}
    )
    assert damaged.status_code == 460, damaged.text
    declared = {**whole, "Upload-Metadata": metadata(filename="whole.txt", asset="a1", sha256="0" * 64)}
    mismatch = httpx.post(f"{server.base_url}/files/", content=body, headers=declared)
    assert mismatch.status_code == 400 and "sha256" in mismatch.text
    too_big = b"x" * (CHUNK_BOUND + 1)
    bounded = {**whole, "Upload-Length": str(len(too_big))}
    assert httpx.post(f"{server.base_url}/files/", content=too_big, headers=bounded).status_code == 413
    named = '{ assetContents(filters: {association: {type: "asset", id: "a1"}, name: "whole.txt"}) '
    listed = gql(server, named + "{ totalCount } }")
    assert listed["data"]["assetContents"]["totalCount"] == 0  # none of them stored anything
    ok = httpx.post(f"{server.base_url}/files/", content=body, headers=whole)
    assert ok.status_code == 201 and ok.headers["upload-offset"] == str(len(body))
    assert content(server, ok.headers["upload-content-id"])["sha256"] == sha256(body)


def test_a_zero_byte_upload_completes_at_creation(server: Server) -> None:
    answer = create(server, 0, filename="empty.txt")
    assert answer.status_code == 201
    assert content(server, answer.headers["upload-content-id"])["length"] == 0


def test_deferred_length_is_given_by_a_later_patch(server: Server) -> None:
    created = create(server, None)
    url = created.headers["location"]
    assert httpx.head(url, headers=AUTH).headers["upload-defer-length"] == "1"
    assert patch(url, 0, DATA[:1000]).status_code == 204
    assert patch(url, 1000, DATA[1000:2000], {"Upload-Length": "500"}).status_code == 400  # under the offset
    last = patch(url, 1000, DATA[1000:2000], {"Upload-Length": "2000"})
    assert last.status_code == 204 and "upload-content-id" in last.headers
    assert content(server, last.headers["upload-content-id"])["sha256"] == sha256(DATA[:2000])


# -- the protocol's refusals ------------------------------------------------------------------------


def test_offset_mismatch_is_409_and_nothing_is_stored(server: Server) -> None:
    url = create(server, 100).headers["location"]
    assert patch(url, 0, b"x" * 10).status_code == 204
    stale = patch(url, 0, b"y" * 10)
    assert stale.status_code == 409 and "Upload-Offset" in stale.text
    assert httpx.head(url, headers=AUTH).headers["upload-offset"] == "10"


def test_a_cut_connection_keeps_what_arrived_unless_a_checksum_was_due(server: Server) -> None:
    port = int(server.base_url.rsplit(":", 1)[1])
    for checksum, kept in (
        (None, True),
        ("sha256 " + base64.b64encode(hashlib.sha256(DATA).digest()).decode(), False),
    ):
        url = create(server, len(DATA)).headers["location"]
        with CutProxy(port, cut_after=200_000, cuts=1) as proxy, pytest.raises(httpx.TransportError):
            patch(
                url.replace(server.base_url, proxy.base_url),
                0,
                DATA,
                {"Upload-Checksum": checksum} if checksum else {},
            )
        offset = int(httpx.head(url, headers=AUTH).headers["upload-offset"])
        assert (100_000 < offset < 200_000) if kept else offset == 0, (checksum, offset)
        rest = patch(url, offset, DATA[offset:])
        assert rest.status_code == 204
        assert content(server, rest.headers["upload-content-id"])["sha256"] == sha256(DATA)


def test_wrong_content_type_is_415(server: Server) -> None:
    url = create(server, 100).headers["location"]
    answer = httpx.patch(
        url, content=b"x", headers={**AUTH, "Upload-Offset": "0", "Content-Type": "text/plain"}
    )
    assert answer.status_code == 415


def test_bad_headers_name_the_header(server: Server) -> None:
    url = create(server, 100).headers["location"]
    for headers, field in (
        ({"Upload-Offset": "-1"}, "Upload-Offset"),
        ({"Upload-Offset": "abc"}, "Upload-Offset"),
        ({"Upload-Offset": "0", "Upload-Checksum": "crc32 AAAA"}, "Upload-Checksum"),
        ({"Upload-Offset": "0", "Upload-Checksum": "sha1 !!!"}, "Upload-Checksum"),
    ):
        answer = httpx.patch(url, content=b"x", headers={**PATCH, **headers})
        assert answer.status_code == 400 and field in answer.text, (headers, answer.text)
    for headers, field in (
        ({}, "Upload-Length"),
        ({"Upload-Length": "10", "Upload-Defer-Length": "1"}, "Upload-Defer-Length"),
        ({"Upload-Defer-Length": "2"}, "Upload-Defer-Length"),
        ({"Upload-Length": "1", "Upload-Metadata": "filename !!"}, "Upload-Metadata"),
        ({"Upload-Length": "1", "Upload-Metadata": "x" * 5000}, "Upload-Metadata"),
        ({"Upload-Length": "1", "Upload-Metadata": metadata(asset="a1")}, "filename"),
        ({"Upload-Length": "1", "Upload-Metadata": metadata(filename="x")}, "asset"),
        ({"Upload-Length": "1", "Upload-Metadata": metadata(filename="x", asset="a1", tags="[1]")}, "tags"),
        ({"Upload-Length": "1", "Upload-Metadata": metadata(filename="x\n", asset="a1")}, "filename"),
        (
            {"Upload-Length": "1", "Upload-Metadata": metadata(filename="x", asset="a1", filetype="no")},
            "filetype",
        ),
        (
            {"Upload-Length": "1", "Upload-Metadata": metadata(filename="x", asset="a1", sha256="zz")},
            "sha256",
        ),
        ({"Upload-Length": "1", "Upload-Concat": "whole"}, "Upload-Concat"),
    ):
        answer = httpx.post(f"{server.base_url}/files/", headers={**AUTH, **headers})
        assert answer.status_code == 400 and field in answer.text, (headers, answer.text)
    unknown_asset = create(server, 1, asset="a-unknown")
    assert unknown_asset.status_code == 404 and "a-unknown" in unknown_asset.text


def test_over_the_maximum_is_413(server: Server) -> None:
    assert create(server, 64 * 1024**2 + 1).status_code == 413
    url = create(server, 10).headers["location"]
    assert patch(url, 0, b"x" * 11).status_code == 413  # past the declared length
    assert httpx.head(url, headers=AUTH).headers["upload-offset"] == "0"


def test_one_patch_carries_at_most_the_chunk_bound(server: Server) -> None:
    url = create(server, CHUNK_BOUND + 10).headers["location"]
    refused = patch(url, 0, b"x" * (CHUNK_BOUND + 10))
    assert refused.status_code == 413, refused.text
    assert httpx.head(url, headers=AUTH).headers["upload-offset"] == "0"
    assert patch(url, 0, b"x" * CHUNK_BOUND).status_code == 204
    assert patch(url, CHUNK_BOUND, b"x" * 10).status_code == 204


def test_checksums_are_checked_and_a_mismatch_is_460_and_discarded(server: Server) -> None:
    url = create(server, 30).headers["location"]
    chunk = b"a" * 10
    for algorithm in ("sha1", "md5", "sha256"):
        digest = base64.b64encode(hashlib.new(algorithm, chunk).digest()).decode()
        offset = int(httpx.head(url, headers=AUTH).headers["upload-offset"])
        wrong = base64.b64encode(hashlib.new(algorithm, b"b" * 10).digest()).decode()
        refused = patch(url, offset, chunk, {"Upload-Checksum": f"{algorithm} {wrong}"})
        assert refused.status_code == 460, refused.text
        assert httpx.head(url, headers=AUTH).headers["upload-offset"] == str(offset)
        assert patch(url, offset, chunk, {"Upload-Checksum": f"{algorithm} {digest}"}).status_code == 204


def test_a_declared_sha256_that_differs_ends_the_upload(server: Server) -> None:
    url = create(server, 5, sha256="0" * 64).headers["location"]
    answer = patch(url, 0, b"hello")
    assert answer.status_code == 400 and "sha256" in answer.text
    assert httpx.head(url, headers=AUTH).status_code == 404


def _spool_of(server: Server, url: str) -> set[str]:
    """What the spool holds for an upload: files or objects, and on S3 multipart uploads in progress."""
    upload_id = url.rsplit("/", 1)[1]
    held = {name for name in stored_objects(server.data_dir) if upload_id in name}
    if BLOBS == "s3":
        listed = s3_client().list_multipart_uploads(Bucket=bucket_of(server.data_dir)).get("Uploads", [])
        held |= {f"multipart:{item['Key']}" for item in listed if upload_id in item["Key"]}
    return held


def test_termination(server: Server) -> None:
    url = create(server, 10 * 1024 * 1024).headers["location"]
    assert patch(url, 0, b"x" * (9 * 1024 * 1024)).status_code == 204  # on S3: a part and a tail
    held = _spool_of(server, url)
    assert held and (BLOBS != "s3" or any(name.startswith("multipart:") for name in held)), held
    assert httpx.delete(url, headers=AUTH).status_code == 204
    assert _spool_of(server, url) == set()  # the bytes are gone, the multipart upload aborted
    assert httpx.head(url, headers=AUTH).status_code == 404
    assert patch(url, 9 * 1024 * 1024, b"x" * 50).status_code == 404
    assert httpx.delete(url, headers=AUTH).status_code == 404


def test_method_override_for_clients_that_only_post(server: Server) -> None:
    url = create(server, 4).headers["location"]
    answer = httpx.post(
        url, content=b"abcd", headers={**PATCH, "Upload-Offset": "0", "X-HTTP-Method-Override": "PATCH"}
    )
    assert answer.status_code == 204 and answer.headers["upload-offset"] == "4"
    deleting = create(server, 4).headers["location"]
    gone = httpx.post(deleting, headers={**AUTH, "X-HTTP-Method-Override": "DELETE"})
    assert gone.status_code == 204


def test_unknown_uploads_are_404(server: Server) -> None:
    for upload_id in ("0" * 32, "not-an-id", "../../etc/passwd"):
        assert httpx.head(f"{server.base_url}/files/{upload_id}", headers=AUTH).status_code == 404


# -- concatenation --------------------------------------------------------------------------------


def test_partial_uploads_concatenate_into_one_content(server: Server) -> None:
    halves = [DATA[:150_000], DATA[150_000:]]
    urls = []
    for half in halves:
        created = httpx.post(
            f"{server.base_url}/files/",
            headers={**AUTH, "Upload-Length": str(len(half)), "Upload-Concat": "partial"},
        )
        assert created.status_code == 201, created.text
        assert patch(created.headers["location"], 0, half).status_code == 204
        urls.append(created.headers["location"])
    final = httpx.post(
        f"{server.base_url}/files/",
        headers={**AUTH, "Upload-Concat": "final;" + " ".join(urls),
                 "Upload-Metadata": metadata(filename="joined.bin", asset="a1")},
    )  # fmt: skip
    assert final.status_code == 201, final.text
    head = httpx.head(final.headers["location"], headers=AUTH)
    assert head.headers["upload-concat"].startswith("final;") and head.headers["upload-length"] == str(
        len(DATA)
    )
    found = content(server, head.headers["upload-content-id"])
    assert found["sha256"] == sha256(DATA) and fetch(found["url"]) == DATA
    refused = patch(final.headers["location"], len(DATA), b"x")
    assert refused.status_code == 403


def test_a_final_upload_of_incomplete_parts_is_refused(server: Server) -> None:
    created = httpx.post(
        f"{server.base_url}/files/", headers={**AUTH, "Upload-Length": "10", "Upload-Concat": "partial"}
    )
    final = httpx.post(
        f"{server.base_url}/files/",
        headers={**AUTH, "Upload-Concat": "final;" + created.headers["location"],
                 "Upload-Metadata": metadata(filename="x.bin", asset="a1")},
    )  # fmt: skip
    assert final.status_code == 400 and "not complete" in final.text


# -- who may ---------------------------------------------------------------------------------------


def test_read_only_foreign_and_missing_credentials_store_nothing(server: Server) -> None:
    for authorization, status in (
        (None, 401),
        ("Automation wrong-token-0123456789", 401),
        (f"Automation {RO_TOKEN}", 403),
        ("Basic dXNlcjpwYXNz", 401),
    ):
        headers = {**TUS, "Upload-Length": "3", "Upload-Metadata": metadata(filename="x", asset="a1")}
        if authorization:
            headers["Authorization"] = authorization
        assert httpx.post(f"{server.base_url}/files/", headers=headers).status_code == status, authorization
    foreign = httpx.post(
        f"{server.base_url}/files/",
        headers={**TUS, "Authorization": f"Automation {FOREIGN_TOKEN}", "Upload-Length": "3",
                 "Upload-Metadata": metadata(filename="x", asset="a2")},
    )  # fmt: skip
    assert foreign.status_code == 404  # o-other has no a2
    url = create(server, 3).headers["location"]
    for authorization in (f"Automation {FOREIGN_TOKEN}", f"Automation {RO_TOKEN}", None):
        headers = {**PATCH, "Upload-Offset": "0"}
        headers.pop("Authorization")
        if authorization:
            headers["Authorization"] = authorization
        assert httpx.patch(url, content=b"abc", headers=headers).status_code in (401, 403, 404)
    assert httpx.head(url, headers=AUTH).headers["upload-offset"] == "0"


def test_a_device_uploads_its_own_content(server: Server) -> None:
    device = {**TUS, "Authorization": f"Device {DEVICE_SECRET}"}
    created = httpx.post(
        f"{server.base_url}/files/",
        headers={**device, "Upload-Length": str(len(DATA)),
                 "Upload-Metadata": metadata(filename="cam.jpg", device="p1.d1")},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    url = created.headers["location"]
    wrong = {
        **device,
        "Authorization": "Device d2-secret-0123",
        "Content-Type": "application/offset+octet-stream",
    }
    assert httpx.patch(url, content=DATA, headers={**wrong, "Upload-Offset": "0"}).status_code == 401
    done = httpx.patch(
        url,
        content=DATA,
        headers={**device, "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"},
    )
    assert done.status_code == 204, done.text
    found = content(server, done.headers["upload-content-id"])
    assert found["createdBy"]["__typename"] == "Device" and found["sha256"] == sha256(DATA)
    listed = gql(server, '{ assetContents(filters: {association: {type: "asset", id: "a1"}}, '
                         'devices: [{product_id: "p1", device_id: "d1"}]) '
                         "{ assetContents { id } } }")  # fmt: skip
    assert done.headers["upload-content-id"] in {
        c["id"] for c in listed["data"]["assetContents"]["assetContents"]
    }


def test_a_device_holds_a_bounded_number_of_unfinished_uploads(server: Server) -> None:
    device = {**TUS, "Authorization": "Device d2-secret-0123", "Upload-Length": "10",
              "Upload-Metadata": metadata(filename="x.bin", device="p1.d2")}  # fmt: skip
    answers = [httpx.post(f"{server.base_url}/files/", headers=device) for _ in range(4)]
    assert [a.status_code for a in answers] == [201, 201, 201, 429]
    assert int(answers[-1].headers["retry-after"]) > 0
    assert httpx.delete(answers[0].headers["location"], headers=device).status_code == 204
    assert httpx.post(f"{server.base_url}/files/", headers=device).status_code == 201


def test_an_enos_device_session_uploads(server: Server) -> None:
    login = httpx.post(
        f"{server.base_url}/auth/p1/d1",
        json={
            "lifetime": 60_000,
            "signMethod": "sha256",
            "sign": device_login_sign("p1", "d1", 60_000, DEVICE_SECRET),
        },
    )
    session = login.json()["data"]["sessionId"]
    headers = {**TUS, "Authorization": f"Session {session}"}
    created = httpx.post(
        f"{server.base_url}/files/",
        content=b"session bytes",
        headers={**headers, "Content-Type": "application/offset+octet-stream", "Upload-Length": "13",
                 "Upload-Metadata": metadata(filename="s.txt", device="p1.d1")},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    assert content(server, created.headers["upload-content-id"])["createdBy"]["__typename"] == "Device"


def test_a_reserved_upload_resumes_through_its_signed_url(server: Server) -> None:
    reserved = gql(
        server,
        "mutation($i: ContentUploadInput!) { createContentUpload(input: $i) { id uploadUrl } }",
        {"i": {"name": "reserved.bin", "associations": [{"type": "asset", "id": "a2"}], "length": len(DATA),
               "sha256": sha256(DATA)}},
    )["data"]["createContentUpload"]  # fmt: skip
    wrong_length = httpx.post(reserved["uploadUrl"], headers={**TUS, "Upload-Length": "5"})
    assert wrong_length.status_code == 400
    whole_reserved = gql(
        server,
        "mutation($i: ContentUploadInput!) { createContentUpload(input: $i) { id uploadUrl } }",
        {"i": {"name": "reserved-whole.bin", "associations": [{"type": "asset", "id": "a2"}],
               "length": 1000, "sha256": sha256(DATA[:1000])}},
    )["data"]["createContentUpload"]  # fmt: skip
    sent_whole = {**TUS, "Upload-Length": "1000", "Content-Type": "application/offset+octet-stream"}
    at_once = httpx.post(whole_reserved["uploadUrl"], content=DATA[:1000], headers=sent_whole)
    assert at_once.status_code == 201 and at_once.headers["upload-content-id"] == whole_reserved["id"]
    assert httpx.put(whole_reserved["uploadUrl"], content=DATA[:1000]).status_code == 404  # used
    created = httpx.post(reserved["uploadUrl"], headers={**TUS, "Upload-Length": str(len(DATA))})
    assert created.status_code == 201, created.text
    url = created.headers["location"]
    assert "sig=" in url
    plain = {**TUS, "Content-Type": "application/offset+octet-stream"}
    assert httpx.patch(url, content=DATA[:1000], headers={**plain, "Upload-Offset": "0"}).status_code == 204
    bare = url.split("?")[0]
    assert httpx.head(bare, headers=AUTH).status_code == 403  # continues at its signed URL only
    tampered = url.replace("sig=", "sig=x")
    assert httpx.head(tampered, headers=TUS).status_code == 403
    assert httpx.head(url, headers=TUS).headers["upload-offset"] == "1000"
    done = httpx.patch(url, content=DATA[1000:], headers={**plain, "Upload-Offset": "1000"})
    assert done.status_code == 204
    assert done.headers["upload-content-id"] == reserved["id"]
    assert content(server, reserved["id"])["sha256"] == sha256(DATA)
    # the reservation is used: its PUT URL no longer takes bytes
    assert httpx.put(reserved["uploadUrl"], content=DATA).status_code == 404


def test_concurrent_patches_are_refused_not_interleaved(server: Server) -> None:
    size = 8 * 1024**2
    url = create(server, size).headers["location"]
    started, release = threading.Event(), threading.Event()
    first: list[httpx.Response] = []

    def slow_body() -> Iterator[bytes]:
        yield b"a" * 65536
        started.set()
        release.wait(30)
        for _ in range(size // 65536 - 1):
            yield b"a" * 65536

    def upload() -> None:
        for _ in range(20):  # a probe below may hold the upload for an instant first: retry as clients do
            first.append(patch(url, 0, slow_body()))  # type: ignore[arg-type]
            if first[-1].status_code != 423:
                return

    thread = threading.Thread(target=upload)
    thread.start()
    wrong = {"Upload-Checksum": "sha1 " + base64.b64encode(b"0" * 20).decode()}  # could never be stored
    try:
        assert started.wait(30)
        for _ in range(200):
            second = patch(url, 0, b"b" * 10, wrong)
            if second.status_code == 423:
                break
        assert second.status_code == 423, second.text
    finally:
        release.set()
        thread.join(60)
    assert first[-1].status_code == 204, first[-1].text
    found = content(server, first[-1].headers["upload-content-id"])
    assert found["sha256"] == sha256(b"a" * size)
