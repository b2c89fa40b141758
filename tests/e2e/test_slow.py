"""Slow suites (``pytest -m slow``, run by CI): a file above 2 GiB end to end, and concurrent load."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.helpers import Server, run_cli, start_server, write_fixture

pytestmark = pytest.mark.slow

TOKEN = "tok-slow-0123456789"
BIG = 2 * 1024**3 + 4097


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("slow")
    document = {
        "organizations": [
            {
                "id": "o-slow",
                "tokens": [{"name": "t", "secret": TOKEN, "permissions": ["read", "write"]}],
                "assets": [{"id": "a-big", "name": "Big"}, {"id": "a-load", "name": "Load"}],
            }
        ]
    }
    fixture = write_fixture(root, document, {})
    assert run_cli("apply", str(fixture), "--data-dir", str(root / "data")).returncode == 0
    server = start_server(root / "data", {"ASSETFILES_MAX_UPLOAD_BYTES": str(4 * 1024**3)})
    yield server
    server.stop()


def _big_file(path: Path) -> str:
    """A file just over 2 GiB with a varying pattern (so a misplaced range cannot pass)."""
    digest = hashlib.sha256()
    block = bytearray(os.urandom(1024 * 1024))
    with path.open("wb") as out:
        written = 0
        counter = 0
        while written < BIG:
            block[:8] = counter.to_bytes(8, "big")
            chunk = bytes(block[: min(len(block), BIG - written)])
            out.write(chunk)
            digest.update(chunk)
            written += len(chunk)
            counter += 1
    return digest.hexdigest()


def test_file_above_2_gib_roundtrip(slow_server: Server, tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    expected = _big_file(source)
    uploaded = run_cli(
        "upload",
        "--url",
        slow_server.base_url,
        "--token",
        TOKEN,
        "--asset",
        "a-big",
        "--no-progress",
        str(source),
    )
    assert uploaded.returncode == 0, uploaded.stderr
    listing = slow_server.data(
        '{ assetContents(filters: {association: {type: "asset", id: "a-big"}}) '
        "{ assetContents { id length sha256 url } } }",
        token=TOKEN,
    )["assetContents"]["assetContents"][0]
    assert listing["length"] == BIG
    assert listing["sha256"] == expected

    async def fetch() -> tuple[str, bytes, str]:
        digest = hashlib.sha256()
        timeout = aiohttp.ClientTimeout(total=600)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.get(listing["url"]) as response:
                assert response.status == 200
                assert response.headers["Content-Length"] == str(BIG)
                async for chunk in response.content.iter_chunked(1024 * 1024):
                    digest.update(chunk)
            start = BIG - 5000
            async with session.get(listing["url"], headers={"Range": f"bytes={start}-"}) as response:
                assert response.status == 206
                tail = await response.read()
                content_range = response.headers["Content-Range"]
        return digest.hexdigest(), tail, content_range

    whole, tail, content_range = asyncio.run(fetch())
    assert whole == expected
    assert content_range == f"bytes {BIG - 5000}-{BIG - 1}/{BIG}"
    with source.open("rb") as handle:
        handle.seek(BIG - 5000)
        assert tail == handle.read()


def test_concurrent_uploads_listings_and_downloads(slow_server: Server) -> None:
    """200 uploads and 400 downloads at concurrency 32 against SQLite: no error, every byte right."""
    headers = {"Authorization": f"Automation {TOKEN}"}
    create = """mutation($i: ContentUploadInput!) { createContentUpload(input: $i) { id uploadUrl } }"""
    payloads = {f"load-{i:03d}.bin": os.urandom(20_000 + i) for i in range(200)}

    async def run() -> dict[str, Any]:
        limit = asyncio.Semaphore(32)
        async with aiohttp.ClientSession() as session:

            async def gql(query: str, variables: dict[str, Any]) -> dict[str, Any]:
                async with session.post(
                    f"{slow_server.base_url}/api/graphql",
                    json={"query": query, "variables": variables},
                    headers=headers,
                ) as response:
                    body: dict[str, Any] = await response.json()
                    assert response.status == 200 and "errors" not in body, body
                    data: dict[str, Any] = body["data"]
                    return data

            async def upload(name: str, data: bytes) -> str:
                async with limit:
                    ticket = (
                        await gql(
                            create,
                            {
                                "i": {
                                    "name": name,
                                    "length": len(data),
                                    "sha256": hashlib.sha256(data).hexdigest(),
                                    "associations": [{"type": "asset", "id": "a-load"}],
                                }
                            },
                        )
                    )["createContentUpload"]
                    async with session.put(ticket["uploadUrl"], data=data) as response:
                        assert response.status == 201, await response.text()
                    return str(ticket["id"])

            await asyncio.gather(*(upload(name, data) for name, data in payloads.items()))
            listed = (
                await gql(
                    """query($p: Pagination) {
                         assetContents(
                           filters: {association: {type: "asset", id: "a-load"}}, pagination: $p
                         ) {
                           assetContents { name url } totalCount
                         }
                       }""",
                    {"p": {"limit": 1000}},
                )
            )["assetContents"]

            async def download(name: str, url: str) -> tuple[str, bytes]:
                async with limit, session.get(url) as response:
                    assert response.status == 200
                    return name, await response.read()

            items = listed["assetContents"] * 2
            fetched = await asyncio.gather(*(download(item["name"], item["url"]) for item in items))
            return {"total": listed["totalCount"], "fetched": fetched}

    result = asyncio.run(run())
    assert result["total"] == len(payloads)
    assert len(result["fetched"]) == 2 * len(payloads)
    for name, data in result["fetched"]:
        assert data == payloads[name]
