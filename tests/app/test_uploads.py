"""Uploads through signed URLs and the device endpoint; mutations on tags and deletion."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from tests.backends import stored_blobs, stored_objects
from tests.conftest import MAX_UPLOAD, RO, RW
from tests.helpers import Server

CREATE = """mutation($i: ContentUploadInput!, $ttl: Int) {
  createContentUpload(input: $i, expiresIn: $ttl) { id uploadUrl method expiresAt }
}"""
LIST = """query($f: ContentFilters, $d: [AssetContentsDeviceInput]) {
  assetContents(filters: $f, devices: $d) {
    assetContents { id name length contentType tags { name value } createdBy { __typename } } totalCount
  }
}"""
TAGS = """mutation($id: ID!, $tags: [TagInput!]!) {
  setContentTags(id: $id, tags: $tags) { id tags { name value } lastModified }
}"""
DELETE = "mutation($id: ID!) { deleteContent(id: $id) { id } }"


def upload_input(data: bytes, asset: str = "a-empty", **overrides: Any) -> dict[str, Any]:
    return {
        "name": "upload.bin",
        "length": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "associations": [{"type": "asset", "id": asset}],
        **overrides,
    }


def blob_files(server: Server) -> set[str]:
    return stored_objects(server.data_dir)


def asset_names(server: Server, asset: str) -> list[str]:
    result = server.data(LIST, {"f": {"association": {"type": "asset", "id": asset}}})["assetContents"]
    return [item["name"] for item in result["assetContents"]]


@pytest.fixture
def untouched(server: Server) -> Iterator[None]:
    """Asserts that the test stored nothing: no new blob, no temporary file, no new content."""
    blobs_before = blob_files(server)
    names_before = asset_names(server, "a-empty")
    yield
    assert blob_files(server) == blobs_before
    assert asset_names(server, "a-empty") == names_before


def test_upload_roundtrip(server: Server) -> None:
    data = os.urandom(300_000)
    ticket = server.data(
        CREATE, {"i": upload_input(data, name="report 1.csv", tags=[{"name": "k", "value": "v"}])}
    )["createContentUpload"]
    assert ticket["method"] == "PUT"
    response = server.put(ticket["uploadUrl"], content=data)
    assert response.status_code == 201, response.text
    stored = response.json()
    assert stored["id"] == ticket["id"]
    assert stored["sha256"] == hashlib.sha256(data).hexdigest()
    assert stored["md5"] == hashlib.md5(data).hexdigest()  # noqa: S324 - checking the stored md5
    assert stored["contentType"] == "text/csv"
    assert stored["createdBy"]["kind"] == "token"
    url = server.data("query($id: ID!) { content(id: $id) { url } }", {"id": ticket["id"]})["content"]["url"]
    assert server.get(url).content == data
    listed = server.data(
        LIST, {"f": {"association": {"type": "asset", "id": "a-empty"}, "name": "report 1.csv"}}
    )
    item = listed["assetContents"]["assetContents"][0]
    assert item["createdBy"]["__typename"] == "ApiToken"
    assert item["tags"] == [{"name": "k", "value": "v"}]
    # The same URL cannot be used twice.
    again = server.put(ticket["uploadUrl"], content=data)
    assert again.status_code == 404
    server.data(DELETE, {"id": ticket["id"]})


def test_identical_bytes_are_stored_once(server: Server) -> None:
    data = os.urandom(10_000)
    before = blob_files(server)
    ids = []
    for name in ("twin-a.bin", "twin-b.bin"):
        ticket = server.data(CREATE, {"i": upload_input(data, name=name)})["createContentUpload"]
        assert server.put(ticket["uploadUrl"], content=data).status_code == 201
        ids.append(ticket["id"])
    assert len(blob_files(server) - before) == 1
    server.data(DELETE, {"id": ids[0]})
    assert len(blob_files(server) - before) == 1  # still used by the twin
    server.data(DELETE, {"id": ids[1]})
    assert blob_files(server) == before  # the bytes go with the last content using them


def test_body_longer_than_declared_is_rejected(server: Server, untouched: None) -> None:
    data = os.urandom(5000)
    ticket = server.data(CREATE, {"i": upload_input(data)})["createContentUpload"]
    response = server.put(ticket["uploadUrl"], content=data + b"x")
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "length"


def test_body_shorter_than_declared_is_rejected(server: Server, untouched: None) -> None:
    data = os.urandom(5000)
    ticket = server.data(CREATE, {"i": upload_input(data)})["createContentUpload"]
    response = server.put(ticket["uploadUrl"], content=data[:-1])
    assert response.status_code == 400
    assert "declared length" in response.json()["error"]["message"]


def test_digest_mismatch_is_rejected(server: Server, untouched: None) -> None:
    data = os.urandom(5000)
    ticket = server.data(CREATE, {"i": upload_input(data)})["createContentUpload"]
    tampered = bytes([data[0] ^ 1]) + data[1:]
    response = server.put(ticket["uploadUrl"], content=tampered)
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "sha256"
    # The reservation survives a failed attempt: the right bytes still go in.
    assert server.put(ticket["uploadUrl"], content=data).status_code == 201
    server.data(DELETE, {"id": ticket["id"]})


def test_declared_length_over_limit_is_refused_at_creation(server: Server, untouched: None) -> None:
    error = server.error(CREATE, {"i": upload_input(b"", length=MAX_UPLOAD + 1)})
    assert error["extensions"] == {"code": "PAYLOAD_TOO_LARGE", "field": "input.length"}


def test_streamed_body_over_limit_is_refused(server: Server, untouched: None) -> None:
    data = b"x" * 100
    ticket = server.data(CREATE, {"i": upload_input(data)})["createContentUpload"]

    async def oversized() -> AsyncIterator[bytes]:
        for _ in range(MAX_UPLOAD // 65536 + 2):
            yield b"y" * 65536

    response = server.put(ticket["uploadUrl"], content=oversized())  # chunked, no Content-Length
    assert response.status_code in (400, 413)
    big_header = server.put(ticket["uploadUrl"], content=b"z" * (MAX_UPLOAD + 1))
    assert big_header.status_code == 413
    assert big_header.json()["error"]["field"] == "Content-Length"


def test_tampered_upload_url_is_403(server: Server, untouched: None) -> None:
    data = b"abc"
    ticket = server.data(CREATE, {"i": upload_input(data)})["createContentUpload"]
    response = server.put(ticket["uploadUrl"].replace("sig=", "sig=x"), content=data)
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        ({"name": ""}, "input.name", "BAD_USER_INPUT"),
        ({"name": "bad\nname"}, "input.name", "BAD_USER_INPUT"),
        ({"name": "n" * 256}, "input.name", "BAD_USER_INPUT"),
        ({"length": -1}, "input.length", "BAD_USER_INPUT"),
        ({"sha256": "xyz"}, "input.sha256", "BAD_USER_INPUT"),
        ({"contentType": "notatype"}, "input.contentType", "BAD_USER_INPUT"),
        ({"associations": []}, "input.associations", "BAD_USER_INPUT"),
        ({"associations": [{"type": "asset", "id": "a-nope"}]}, "input.associations[0].id", "NOT_FOUND"),
        ({"associations": [{"type": "shelf", "id": "x"}]}, "input.associations[0].type", "BAD_USER_INPUT"),
        (
            {"associations": [{"type": "device", "id": "p7k2q9.pump-007"}]},
            "input.associations[0].type",
            "BAD_USER_INPUT",
        ),
        (
            {"associations": [{"type": "asset", "id": "a-empty"}, {"type": "asset", "id": "b-asset"}]},
            "input.associations[1].id",
            "NOT_FOUND",
        ),
        ({"tags": [{"name": "a", "value": None}]}, "input.tags[0].value", "BAD_USER_INPUT"),
        (
            {"tags": [{"name": "a", "value": "1"}, {"name": "a", "value": "2"}]},
            "input.tags",
            "BAD_USER_INPUT",
        ),
    ],
)
def test_bad_upload_input(
    server: Server, untouched: None, overrides: dict[str, Any], field: str, code: str
) -> None:
    error = server.error(CREATE, {"i": upload_input(b"abc", **overrides)})
    assert error["extensions"] == {"code": code, "field": field}


@pytest.mark.parametrize("length", [1.5, "12", 2**70])
def test_length_must_be_an_integer(server: Server, untouched: None, length: Any) -> None:
    error = server.error(CREATE, {"i": upload_input(b"abc", length=length)})
    assert error["_status"] == 400
    assert "length" in error["message"]


def test_read_only_token_cannot_write(server: Server, untouched: None) -> None:
    error = server.error(CREATE, {"i": upload_input(b"abc")}, token=RO)
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert "write" in error["message"]


def test_set_tags_and_delete(server: Server) -> None:
    data = b"tag me"
    ticket = server.data(CREATE, {"i": upload_input(data, name="tagged.txt")})["createContentUpload"]
    assert server.put(ticket["uploadUrl"], content=data).status_code == 201
    first = server.data("query($id: ID!) { content(id: $id) { lastModified } }", {"id": ticket["id"]})
    tagged = server.data(TAGS, {"id": ticket["id"], "tags": [{"name": "state", "value": "done"}]})[
        "setContentTags"
    ]
    assert tagged["tags"] == [{"name": "state", "value": "done"}]
    assert tagged["lastModified"] >= first["content"]["lastModified"]
    found = server.data(
        LIST, {"f": {"association": {"type": "asset", "id": "a-empty"}, "tags": [{"name": "state"}]}}
    )
    assert [i["id"] for i in found["assetContents"]["assetContents"]] == [ticket["id"]]
    assert server.data(DELETE, {"id": ticket["id"]})["deleteContent"] == {"id": ticket["id"]}
    error = server.error(DELETE, {"id": ticket["id"]})
    assert error["extensions"] == {"code": "NOT_FOUND", "field": "id"}


def test_set_tags_errors(server: Server) -> None:
    assert server.error(TAGS, {"id": "nope", "tags": []})["extensions"]["code"] == "NOT_FOUND"
    error = server.error(TAGS, {"id": "nope", "tags": [{"name": "", "value": "x"}]})
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "tags"}
    assert server.error(DELETE, {"id": "x"}, token=RO)["extensions"]["code"] == "FORBIDDEN"


# -- device uploads --------------------------------------------------------------------------


def device_put(
    server: Server, data: bytes, *, device: str = "pump-007", secret: str = "dev-pump-007-secret", **kw: Any
) -> httpx.Response:
    headers = {"Authorization": f"Device {secret}", **kw.pop("headers", {})}
    params = kw.pop("params", {"name": "upload-log.csv"})
    return server.put(
        f"{server.base_url}/api/devices/p7k2q9/{device}/content", content=data, headers=headers, params=params
    )


def test_device_upload_becomes_device_content_of_its_assets(server: Server) -> None:
    data = b"t,v\n1,2\n"
    digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
    response = device_put(server, data, headers={"Repr-Digest": f"sha-256=:{digest}:"})
    assert response.status_code == 201, response.text
    stored = response.json()
    assert stored["createdBy"] == {"kind": "device", "name": None, "pid": "p7k2q9", "identity": "pump-007"}
    listed = server.data(
        LIST,
        {
            "f": {"association": {"type": "asset", "id": "a-pump-7"}, "name": "upload-log.csv"},
            "d": [{"product_id": "p7k2q9", "device_id": "pump-007"}],
        },
    )["assetContents"]
    assert [item["id"] for item in listed["assetContents"]] == [stored["id"]]
    assert listed["assetContents"][0]["createdBy"]["__typename"] == "Device"
    url = server.data(
        "query($i: DeviceAssetContentInput!) { deviceAssetContent(input: $i) { url } }",
        {"i": {"id": stored["id"], "product_id": "p7k2q9", "device_id": "pump-007"}},
    )["deviceAssetContent"]["url"]
    assert server.get(url).content == data
    assert "upload-log.csv" not in asset_names(server, "a-pump-7")  # not user content
    server.data(DELETE, {"id": stored["id"]})


@pytest.mark.parametrize(
    ("kwargs", "status", "fragment"),
    [
        ({"secret": "wrong-secret"}, 401, "credential"),
        ({"secret": "other-pump-007-secret"}, 201, None),  # the same device id in o-other
        ({"device": "pump-404"}, 401, "credential"),
        ({"device": "bad.id"}, 400, "device_id"),
        ({"params": {}}, 400, "name"),
        ({"params": {"name": ""}}, 400, "name"),
        ({"headers": {"Repr-Digest": "md5=:AAAA:"}}, 400, "sha-256"),
        ({"headers": {"Repr-Digest": "sha-256=:!!!:"}}, 400, "base64"),
        ({"headers": {"Repr-Digest": f"sha-256=:{base64.b64encode(b'0' * 32).decode()}:"}}, 400, "sha256"),
        ({"headers": {"Content-Digest": "sha-256=:AAAA:"}}, 400, "32 bytes"),
    ],
)
def test_device_upload_bad_input(
    server: Server, kwargs: dict[str, Any], status: int, fragment: str | None
) -> None:
    before = blob_files(server)
    response = device_put(server, b"device bytes " + os.urandom(8), **kwargs)
    assert response.status_code == status, response.text
    if fragment is None:
        server.data(DELETE, {"id": response.json()["id"]}, token="tok-other-0123456789")
    else:
        assert fragment in response.text
        assert blob_files(server) == before
        if status == 401:
            assert response.headers["www-authenticate"].startswith("Device")


def test_device_upload_without_authorization(server: Server) -> None:
    response = server.put(f"{server.base_url}/api/devices/p7k2q9/pump-007/content?name=x.csv", content=b"x")
    assert response.status_code == 401
    assert "Authorization" in response.json()["error"]["message"]


def test_total_count_follows_uploads_and_deletes(server: Server) -> None:
    def total(*filters: dict[str, Any]) -> int:
        query_filters: dict[str, Any] = {"association": {"type": "asset", "id": "a-empty"}}
        for extra in filters:
            query_filters.update(extra)
        count: int = server.data(LIST, {"f": query_filters})["assetContents"]["totalCount"]
        return count

    before, before_filtered = total(), total({"name": "count-*"})
    ids = []
    for index in range(3):
        data = f"count {index}".encode()
        ticket = server.data(CREATE, {"i": upload_input(data, name=f"count-{index}.txt")})[
            "createContentUpload"
        ]
        assert server.put(ticket["uploadUrl"], content=data).status_code == 201
        ids.append(ticket["id"])
    assert total() == before + 3  # from the per-asset counter
    assert total({"name": "count-*"}) == before_filtered + 3  # counted by the query
    for content_id in ids:
        server.data(DELETE, {"id": content_id})
    assert total() == before
    assert total({"name": "count-*"}) == before_filtered


@pytest.mark.parametrize("ttl", [0, 7 * 24 * 3600 + 1])
def test_upload_url_lifetime_is_bounded(server: Server, untouched: None, ttl: int) -> None:
    error = server.error(CREATE, {"i": upload_input(b"abc"), "ttl": ttl})
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "expiresIn"}


@pytest.mark.parametrize(
    ("content_type", "fragment"),
    [
        ("text/pl\u00e9in", "printable ASCII"),
        ("text/plain\u0007", "printable ASCII"),
        ("/plain", "media type"),
    ],
)
def test_media_types_a_header_cannot_carry_are_refused(
    server: Server, content_type: str, fragment: str
) -> None:
    mutation = """mutation($input: ContentUploadInput!) { createContentUpload(input: $input) { id } }"""
    variables = {"input": {"name": "m.txt", "contentType": content_type, "length": 1, "sha256": "0" * 64,
                           "associations": [{"type": "asset", "id": "a-pump-7"}]}}  # fmt: skip
    error = server.error(mutation, variables)
    assert error["extensions"]["field"] == "input.contentType" and fragment in error["message"]


def test_a_device_upload_with_a_non_ascii_media_type_stores_nothing(server: Server) -> None:
    before = stored_blobs(server.data_dir)
    answer = server.put(
        f"{server.base_url}/api/devices/p7k2q9/pump-007/content?name=x.txt",
        content=b"x",
        headers={b"Authorization": b"Device dev-pump-007-secret", b"Content-Type": b"text/\xe9t\xe9"},
    )
    assert answer.status_code == 400 and answer.json()["error"]["field"] == "contentType"
    assert stored_blobs(server.data_dir) == before


def test_names_with_lone_surrogates_are_refused(server: Server) -> None:
    """JSON can carry an unpaired surrogate escape; it is not text any store or disk can hold."""
    mutation = "mutation($input: ContentUploadInput!) { createContentUpload(input: $input) { id } }"
    variables = {"input": {"name": "bad\ud800.txt", "length": 1, "sha256": "0" * 64,
                           "associations": [{"type": "asset", "id": "a-pump-7"}]}}  # fmt: skip
    body = json.dumps({"query": mutation, "variables": variables}).encode()  # "\\ud800" on the wire
    headers = {"Authorization": f"Automation {RW}", "Content-Type": "application/json"}
    error = server.post(server.graphql_url, content=body, headers=headers).json()["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and "surrogate" in error["message"]


def test_device_secrets_are_checked_off_the_loop_and_unknown_devices_cost_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In process, against a stand-in catalog: each check runs scrypt once, on a worker thread,
    for a known device with a wrong secret and for an unknown device (against a dummy hash)."""
    from assetfiles.errors import Unauthenticated
    from assetfiles.model import DeviceCredential, DeviceRef
    from assetfiles.service import access
    from assetfiles.service.secrets import hash_device_secret, verify_device_secret

    checks: list[tuple[str, bool]] = []

    def recording(secret: str, stored: str) -> bool:
        checks.append((stored, threading.current_thread() is threading.main_thread()))
        return verify_device_secret(secret, stored)

    monkeypatch.setattr("assetfiles.service.access.verify_device_secret", recording)
    known_hash = hash_device_secret("right-secret-0123")

    class Devices:
        async def find_devices(self, device: DeviceRef) -> list[DeviceCredential]:
            return [DeviceCredential("o-1", known_hash)] if device.device_id == "known" else []

    checker = access.Access(Devices(), key=b"k" * 32)  # type: ignore[arg-type]

    async def refuse(device_id: str) -> None:
        with pytest.raises(Unauthenticated):
            await checker.device_principal(DeviceRef("p", device_id), "wrong-secret-0123")

    asyncio.run(refuse("known"))
    asyncio.run(refuse("unknown"))
    assert [on_loop for _, on_loop in checks] == [False, False]
    assert checks[0][0] == known_hash and checks[1][0] != known_hash  # the dummy hash
    assert len(checks) == 2
