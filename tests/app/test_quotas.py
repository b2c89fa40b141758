"""Quotas per organization, enforced on every upload path, over real HTTP."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.backends import stored_blobs
from tests.helpers import Server, encryption, md5hex, run_cli, seed_and_start

TOKEN = "tok-quota-rw-0123456789"
DEVICE = "dev-quota-secret-0123"
APP_KEY, APP_SECRET = "8a9b0c1d-2e3f-4a5b-8c6d-7e8f9a0b1c2d", "9b0c1d2e-3f4a-4b5c-9d6e-8f9a0b1c2d3e"
MAX_FILE, MAX_TOTAL = 1000, 3000
SEEDED = b"x" * 100


def document() -> dict[str, Any]:
    return {
        "organizations": [
            {
                "id": "o-q",
                "quota": {"max_total_bytes": MAX_TOTAL, "max_file_bytes": MAX_FILE,
                          "content_types": ["text/*", "application/octet-stream"]},
                "tokens": [{"name": "rw", "secret": TOKEN, "permissions": ["read", "write"]}],
                "applications": [{"app_key": APP_KEY, "app_secret": APP_SECRET,
                                  "policies": ["asset:read", "asset:write"]}],
                "products": [{"id": "p1", "devices": [{"id": "d1", "secret": DEVICE}]}],
                "assets": [{"id": "a-q", "name": "Quota",
                            "signals": [{"id": "s", "channel": "p1.d1.data_in.x"}],
                            "content": [{"path": "files/seed.txt"}]}],
            }
        ]
    }  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("quotas")
    running = seed_and_start(root, document(), {"files/seed.txt": SEEDED})
    yield running
    running.stop()


def usage(server: Server) -> dict[str, Any]:
    data: dict[str, Any] = server.data(
        "{ organizationUsage { storedBytes contentCount "
        "quota { maxTotalBytes maxFileBytes contentTypes } } }",
        token=TOKEN,
    )["organizationUsage"]
    return data


def device_put(server: Server, data: bytes, content_type: str = "application/octet-stream") -> httpx.Response:
    return server.put(
        f"{server.base_url}/api/devices/p1/d1/content?name=f-{time.monotonic_ns()}.bin",
        content=data,
        headers={"Authorization": f"Device {DEVICE}", "Content-Type": content_type},
    )


def reserve(server: Server, length: int, content_type: str = "text/plain") -> dict[str, Any]:
    mutation = (
        """mutation($input: ContentUploadInput!) { createContentUpload(input: $input) { id uploadUrl } }"""
    )
    variables = {"input": {"name": "r.txt", "contentType": content_type, "length": length,
                           "sha256": "0" * 64, "associations": [{"type": "asset", "id": "a-q"}]}}  # fmt: skip
    body: dict[str, Any] = server.post(server.graphql_url, json={"query": mutation, "variables": variables},
                                      headers={"Authorization": f"Automation {TOKEN}"}).json()  # fmt: skip
    return body


def enos_token(server: Server) -> str:
    stamp = int(time.time() * 1000)
    answer = server.post(
        f"{server.base_url}/apim-token-service/v2.0/token/get",
        json={"appKey": APP_KEY, "encryption": encryption(APP_KEY, stamp, APP_SECRET), "timestamp": stamp},
    )
    token: str = answer.json()["data"]["accessToken"]
    return token


def enos_post(server: Server, data: bytes, *, lark: bool = False) -> httpx.Response:
    name = "q.bin"
    entry = {"featureId": "f", "assetId": "a-q", "fileLength": len(data), "md5": md5hex(data)}
    message = {"method": "integration.attribute.post", "files": {name: entry},
               "params": [{"assetId": "a-q", "attributes": {"f": f"local://{name}"}}]}  # fmt: skip
    parts: list[tuple[str, Any]] = [("enos-message", (None, json.dumps(message)))]
    if not lark:
        parts.append(("enos-file", (name, data, "application/octet-stream")))
    url = f"{server.base_url}/connect-service/v2.1/integration?action=postAttribute&orgId=o-q"
    return server.post(url + ("&useLark=true" if lark else ""), files=parts,
                      headers={"apim-accesstoken": enos_token(server)})  # fmt: skip


def test_quota_from_the_fixture_and_usage(server: Server) -> None:
    assert usage(server) == {
        "storedBytes": len(SEEDED),
        "contentCount": 1,
        "quota": {"maxTotalBytes": MAX_TOTAL, "maxFileBytes": MAX_FILE,
                  "contentTypes": ["text/*", "application/octet-stream"]},
    }  # fmt: skip
    listed = run_cli("usage", "--org", "o-q", "--json", "--data-dir", str(server.data_dir))
    assert json.loads(listed.stdout)["storedBytes"] == len(SEEDED)


def test_every_upload_path_refuses_what_the_quota_forbids(server: Server) -> None:
    before, blobs = usage(server), stored_blobs(server.data_dir)
    too_big = b"y" * (MAX_FILE + 1)
    # GraphQL reservation: refused before any byte, in GraphQL's dialect
    for length, content_type, fragment in [(MAX_FILE + 1, "text/plain", "at most 1000 bytes"),
                                           (10, "image/png", "does not accept 'image/png'")]:  # fmt: skip
        error = reserve(server, length, content_type)["errors"][0]
        assert error["extensions"]["code"] == "QUOTA_EXCEEDED" and fragment in error["message"]
    # device upload: cut off while streaming (413), a media type refused (415)
    refused = device_put(server, too_big)
    assert refused.status_code == 413 and refused.json()["error"]["code"] == "QUOTA_EXCEEDED"
    assert device_put(server, b"z", "image/png").status_code == 415
    # EnOS multipart (the spooling limit) and upload-URL mode (the declared length)
    enos = enos_post(server, too_big)
    assert enos.status_code == 413 and enos.json()["code"] == 413
    lark = enos_post(server, too_big, lark=True)
    assert lark.status_code == 413 and "at most 1000 bytes" in lark.json()["msg"]
    assert usage(server) == before and stored_blobs(server.data_dir) == blobs


def test_the_total_is_enforced_at_reservation_while_streaming_and_at_insert(server: Server) -> None:
    # a reservation made while there is room ...
    room = MAX_TOTAL - usage(server)["storedBytes"]
    data = b"r" * 900
    admitted = reserve(server, len(data))
    assert "errors" not in admitted, admitted
    # ... then devices fill the organization
    while room >= 900:
        assert device_put(server, b"d" * 900).status_code == 201
        room -= 900
    before, blobs = usage(server), stored_blobs(server.data_dir)
    assert before["storedBytes"] > MAX_TOTAL - 900
    # the reserved PUT no longer fits: 507 (its declared sha256 is right for these bytes)
    url = admitted["data"]["createContentUpload"]["uploadUrl"]
    full = server.put(url, content=data)
    assert full.status_code == 507 and full.json()["error"]["code"] == "QUOTA_EXCEEDED", full.text
    # a new reservation or device upload past the total is refused as well
    assert reserve(server, 900)["errors"][0]["extensions"]["code"] == "QUOTA_EXCEEDED"
    assert device_put(server, b"d" * 900).status_code == 507
    assert usage(server) == before and stored_blobs(server.data_dir) == blobs
    # deleting makes room again
    listing = server.data('{ assetContents(filters: {association: {type: "asset", id: "a-q"}}, '
                          'devices: [{product_id: "p1", device_id: "d1"}]) { assetContents { id } } }',
                          token=TOKEN)["assetContents"]["assetContents"]  # fmt: skip
    server.data("mutation($id: ID!) { deleteContent(id: $id) { id } }", {"id": listing[0]["id"]}, token=TOKEN)
    assert usage(server)["storedBytes"] == before["storedBytes"] - 900
    assert device_put(server, b"d" * 900).status_code == 201


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--org", "o-nope"], "not found"),
        (["--org", "o-q", "--content-type", "images"], "not a media type"),
        (["--org", "o-q", "--max-file-bytes", "-1"], "--max-file-bytes"),
    ],
)
def test_quota_command_bad_input(server: Server, args: list[str], fragment: str) -> None:
    result = run_cli("quota", "set", *args, "--data-dir", str(server.data_dir))
    assert result.returncode == 2 and fragment in result.stderr, result.stderr


def test_quota_set_and_clear(tmp_path: Any) -> None:
    running = seed_and_start(tmp_path, {"organizations": [{"id": "o-c", "tokens": [
        {"name": "rw", "secret": TOKEN, "permissions": ["read", "write"]}]}]}, {})  # fmt: skip
    data_dir = str(running.data_dir)
    try:
        assert (
            run_cli(
                "quota", "set", "--org", "o-c", "--max-file-bytes", "5", "--data-dir", data_dir
            ).returncode
            == 0
        )
        quota = running.data(
            "{ organizationUsage { quota { maxFileBytes maxTotalBytes contentTypes } } }", token=TOKEN
        )
        assert quota["organizationUsage"]["quota"] == {
            "maxFileBytes": 5,
            "maxTotalBytes": None,
            "contentTypes": None,
        }
        assert run_cli("quota", "clear", "--org", "o-c", "--data-dir", data_dir).returncode == 0
        cleared = running.data("{ organizationUsage { quota { maxFileBytes } } }", token=TOKEN)
        assert cleared["organizationUsage"]["quota"] is None
    finally:
        running.stop()


def test_resumable_uploads_are_held_to_the_quota(server: Server) -> None:
    """Checked at creation from Upload-Length, and again while the bytes of a deferred length arrive."""
    tus = {"Tus-Resumable": "1.0.0", "Authorization": f"Automation {TOKEN}"}

    def metadata(name: str, filetype: str = "text/plain") -> str:
        pairs = {"filename": name, "asset": "a-q", "filetype": filetype}
        return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in pairs.items())

    files = f"{server.base_url}/files/"
    too_large = server.post(files, headers={**tus, "Upload-Length": str(MAX_FILE + 1),
                                            "Upload-Metadata": metadata("big.txt")})  # fmt: skip
    assert too_large.status_code == 413, too_large.text
    wrong_type = server.post(files, headers={**tus, "Upload-Length": "10",
                                             "Upload-Metadata": metadata("x.png", "image/png")})  # fmt: skip
    assert wrong_type.status_code == 415, wrong_type.text
    deferred = server.post(
        files, headers={**tus, "Upload-Defer-Length": "1", "Upload-Metadata": metadata("d.txt")}
    )
    url = deferred.headers["location"]
    patch = {**tus, "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"}
    over = server.request("PATCH", url, content=b"y" * (MAX_FILE + 1), headers=patch)
    assert over.status_code == 413, over.text
    assert server.head(url, headers=tus).headers["upload-offset"] == "0"
    before = usage(server)["storedBytes"]
    size = min(50, MAX_TOTAL - before)
    assert size > 0, before
    fits = server.request("PATCH", url, content=b"y" * size, headers={**patch, "Upload-Length": str(size)})
    assert fits.status_code == 204, fits.text
    assert usage(server)["storedBytes"] == before + size
