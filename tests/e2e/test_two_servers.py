"""Two server processes on one catalog and one blob store behave as one server.

On the default backend they share the SQLite file; in the PostgreSQL pass of .ci/run
(``ASSETFILES_TEST_BACKEND=postgres``) they share one PostgreSQL database, as a scaled-out
deployment does.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.backends import BLOBS
from tests.helpers import SECRET_KEY, Server, run_cli, sha256, start_server, write_fixture

TOKEN = "tok-two-rw-0123456789"
APP, APP_SECRET = "ak-two", "as-two-secret-0123"


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server]]:
    root = tmp_path_factory.mktemp("two-servers")
    document = {"organizations": [{"id": "o-two",
        "tokens": [{"name": "rw", "secret": TOKEN, "permissions": ["read", "write"]}],
        "applications": [{"app_key": APP, "app_secret": APP_SECRET, "policies": ["asset:read"]}],
        "assets": [{"id": "a", "name": "A"}]}]}  # fmt: skip
    fixture = write_fixture(root, document, {})
    data_dir = root / "data"
    applied = run_cli(
        "apply", str(fixture), "--data-dir", str(data_dir), env={"ASSETFILES_SECRET_KEY": SECRET_KEY}
    )
    assert applied.returncode == 0, applied.stderr
    first, second = start_server(data_dir), start_server(data_dir)
    yield first, second
    first.stop()
    second.stop()


def test_upload_through_one_list_and_download_through_the_other(pair: tuple[Server, Server]) -> None:
    first, second = pair
    data = b"written through the first process " * 1000
    ticket = first.data(
        "mutation($i: ContentUploadInput!) { createContentUpload(input: $i) { id uploadUrl } }",
        {"i": {"name": "shared.bin", "length": len(data), "sha256": sha256(data),
               "associations": [{"type": "asset", "id": "a"}]}},
        token=TOKEN,
    )["createContentUpload"]  # fmt: skip
    assert ticket["uploadUrl"].startswith(first.base_url)
    assert httpx.put(ticket["uploadUrl"], content=data).status_code == 201
    listing = second.data(
        '{ assetContents(filters: {association: {type: "asset", id: "a"}}) '
        "{ totalCount assetContents { id name url } } }",
        token=TOKEN,
    )["assetContents"]
    assert listing["totalCount"] == 1 and listing["assetContents"][0]["id"] == ticket["id"]
    url = listing["assetContents"][0]["url"]
    assert httpx.get(url).content == data
    if BLOBS == "local":
        # a URL signed by one process is honoured by the other (one key, one catalog)
        assert url.startswith(second.base_url)
        assert httpx.get(url.replace(second.base_url, first.base_url)).content == data


def test_token_service_state_is_shared(pair: tuple[Server, Server]) -> None:
    first, second = pair
    stamp = int(time.time() * 1000)
    body = {
        "appKey": APP,
        "encryption": hashlib.sha256(f"{APP}{stamp}{APP_SECRET}".encode()).hexdigest(),
        "timestamp": stamp,
    }
    issued = httpx.post(f"{first.base_url}/apim-token-service/v2.0/token/get", json=body)
    assert issued.status_code == 200
    # the same signed request at the other process: it knows what the first one obtained
    repeated = httpx.post(f"{second.base_url}/apim-token-service/v2.0/token/get", json=body)
    assert repeated.status_code == 200
    assert repeated.json()["data"]["accessToken"] == issued.json()["data"]["accessToken"]
    again = {**body, "timestamp": stamp + 1,
             "encryption": hashlib.sha256(f"{APP}{stamp + 1}{APP_SECRET}".encode()).hexdigest()}  # fmt: skip
    same = httpx.post(f"{second.base_url}/apim-token-service/v2.0/token/get", json=again)
    assert same.json()["data"]["accessToken"] == issued.json()["data"]["accessToken"]
    token = issued.json()["data"]["accessToken"]
    answer = httpx.get(
        f"{second.base_url}/connect-service/v2.1/files",
        params={"action": "getFileInfo", "orgId": "o-two", "fileUri": "enos-connect://0123456789abcdef.bin",
                "category": "feature", "assetId": "a"},
        headers={"apim-accesstoken": token},
    )  # fmt: skip
    assert answer.status_code == 404  # authenticated by the other process; the file just does not exist
