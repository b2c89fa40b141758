"""Bounds on what uploads may hold: tags per content, upload URLs per request and pending per
organization, the lifetime of an upload URL, and EnOS multi-file uploads that appear together or
not at all."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.backends import stored_blobs
from tests.conftest import RW
from tests.e2e.test_enos import GQL_TOKEN, access_token, enos_document, enos_files, post_integration
from tests.helpers import Server, md5hex, seed_and_start

PENDING_CAP = 4
CREATE = """mutation($i: ContentUploadInput!, $ttl: Int) {
  createContentUpload(input: $i, expiresIn: $ttl) { uploadUrl expiresAt } }"""


def _input(data: bytes, *, asset: str = "a2", **extra: Any) -> dict[str, Any]:
    return {
        "name": "f.bin",
        "associations": [{"type": "asset", "id": asset}],
        "length": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        **extra,
    }


@pytest.fixture(scope="module")
def bounded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The EnOS world with a quota that leaves o-enos 6,000 bytes, and 4 pending uploads at most."""
    document = enos_document()
    seeded = sum(len(data) for name, data in enos_files().items() if name != "files/other.bin")
    document["organizations"][0]["quota"] = {"max_total_bytes": seeded + 6000}
    env = {"ASSETFILES_MAX_PENDING_UPLOADS_PER_ORG": str(PENDING_CAP)}
    running = seed_and_start(tmp_path_factory.mktemp("bounds"), document, enos_files(), env)
    yield running
    running.stop()


def test_tags_per_content_are_capped(server: Server) -> None:
    tags = [{"name": f"t{i}", "value": "v"} for i in range(101)]
    error = server.error(CREATE, {"i": _input(b"x", asset="a-empty", tags=tags)}, token=RW)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "input.tags"}
    assert "at most 100 tags" in error["message"]


def test_upload_url_lifetime_is_bounded(server: Server) -> None:
    error = server.error(CREATE, {"i": _input(b"x", asset="a-empty"), "ttl": 24 * 3600 + 1}, token=RW)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "expiresIn"}
    ok = server.data(CREATE, {"i": _input(b"x", asset="a-empty"), "ttl": 24 * 3600}, token=RW)
    assert ok["createContentUpload"]["uploadUrl"]


def test_upload_urls_per_request_are_capped(server: Server) -> None:
    fields = " ".join(
        f'u{i}: createContentUpload(input: {{name: "f{i}.bin", associations: [{{type: "asset", id: '
        f'"a-empty"}}], length: 1, sha256: "{"0" * 64}"}}) {{ uploadUrl }}'
        for i in range(101)
    )
    body = server.gql(f"mutation {{ {fields} }}", token=RW).json()
    (error,) = body["errors"]  # the 101st; the field is non-null, so data is null as a whole
    assert error["path"] == ["u100"] and "at most 100 per request" in error["message"]


def test_pending_uploads_per_organization_are_capped(bounded: Server) -> None:
    data = os.urandom(100)
    urls = []
    for _ in range(PENDING_CAP):
        urls.append(
            bounded.data(CREATE, {"i": _input(data)}, token=GQL_TOKEN)["createContentUpload"]["uploadUrl"]
        )
    refused = bounded.gql(CREATE, {"i": _input(data)}, token=GQL_TOKEN)
    assert refused.status_code == 200
    error = refused.json()["errors"][0]
    assert error["extensions"]["code"] == "RATE_LIMITED" and "unused upload URLs" in error["message"]
    # EnOS's upload-URL mode takes from the same allowance, and answers in its envelope.
    message = {"params": [{"assetId": "a2", "attributes": {"f": "local://l.bin"}}],
               "files": {"l.bin": {"featureId": "f", "assetId": "a2", "fileLength": 100}}}  # fmt: skip
    lark = httpx.post(
        f"{bounded.base_url}/connect-service/v2.1/integration",
        params={"action": "postAttribute", "orgId": "o-enos", "useLark": "true"},
        files=[("enos-message", (None, json.dumps(message)))],
        headers={"apim-accesstoken": access_token(bounded)},
    )
    assert lark.status_code == 429 and lark.json()["code"] == 429, lark.text
    assert 1 <= int(lark.headers["retry-after"]) <= 600
    # Using one frees its place.
    assert httpx.put(urls[0], content=data).status_code == 201
    assert bounded.data(CREATE, {"i": _input(data)}, token=GQL_TOKEN)["createContentUpload"]["uploadUrl"]


def _a2_names(server: Server) -> list[str]:
    query = '{ assetContents(filters: {association: {type: "asset", id: "a2"}}) { assetContents { name } } }'
    return [c["name"] for c in server.data(query, token=GQL_TOKEN)["assetContents"]["assetContents"]]


def test_enos_files_of_one_request_appear_together_or_not_at_all(bounded: Server) -> None:
    """Each of two 4,000-byte files fits the 6,000 bytes left, both do not: neither is kept."""
    halves = {"one.bin": os.urandom(4000), "two.bin": os.urandom(4000)}
    message: dict[str, Any] = {
        "params": [{"assetId": "a2", "attributes": {"a": "local://one.bin", "b": "local://two.bin"}}],
        "files": {
            name: {"featureId": feature, "assetId": "a2", "md5": md5hex(part)}
            for (name, part), feature in zip(halves.items(), ("a", "b"), strict=True)
        },
    }
    names_before, blobs_before = _a2_names(bounded), stored_blobs(bounded.data_dir)
    refused = post_integration(bounded, access_token(bounded), "postAttribute", message, halves)
    assert refused.status_code == 507 and refused.json()["code"] == 507, refused.text
    assert _a2_names(bounded) == names_before
    assert stored_blobs(bounded.data_dir) == blobs_before
    # One of them alone fits.
    single = {"params": message["params"][:1], "files": {"one.bin": message["files"]["one.bin"]}}
    single["params"] = [{"assetId": "a2", "attributes": {"a": "local://one.bin"}}]
    accepted = post_integration(
        bounded, access_token(bounded), "postAttribute", single, {"one.bin": halves["one.bin"]}
    )
    assert accepted.status_code == 200, accepted.text
    assert "one.bin" in _a2_names(bounded)
