"""Crash consistency: the server is killed (SIGKILL, workers included) while dozens of uploads on
every path and deletes are in flight, then restarted, round after round.

After each kill: ``fsck --verify`` is clean; every upload the server acknowledged is listed with
the bytes it was sent; every acknowledged delete is gone; an EnOS multi-file request is either
wholly visible or not at all (and wholly, when acknowledged). At the end ``gc`` leaves no
temporary file or spool directory.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_enos import GQL_TOKEN, access_token, enos_document, enos_files, integration_body
from tests.helpers import (
    Server,
    kill_server,
    md5hex,
    run_cli,
    seed_and_start,
    start_server,
    temporaries,
)

pytestmark = pytest.mark.slow

ROUNDS = 10
GRAPHQL_UPLOADS, DEVICE_UPLOADS, ENOS_REQUESTS, LARK_REQUESTS, DELETES = 16, 16, 12, 8, 10
ENOS_FILES_PER_REQUEST = 3
DEVICE_SECRET = "d1-secret-0123"
CREATE = """mutation($i: ContentUploadInput!) { createContentUpload(input: $i) { id uploadUrl } }"""
DELETE = "mutation($id: ID!) { deleteContent(id: $id) { id } }"
LISTING = """query($d: [AssetContentsDeviceInput], $o: Int) {
  assetContents(filters: {association: {type: "asset", id: "a1"}}, devices: $d,
                pagination: {limit: 1000, offset: $o}) { totalCount assetContents { id name sha256 } } }"""


@dataclass
class Ledger:
    """What the server acknowledged, across rounds."""

    #: content id -> sha256 of the bytes sent
    uploads: dict[str, str] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    #: deletes sent but cut off by the kill: either outcome is right
    delete_attempted: set[str] = field(default_factory=set)
    #: the names of each EnOS multi-file request -> whether it was acknowledged
    enos_requests: dict[tuple[str, ...], bool] = field(default_factory=dict)
    #: Lark file name -> sha256, for the files whose bytes were acknowledged
    lark: dict[str, str] = field(default_factory=dict)
    attempts: int = 0
    acknowledged: int = 0
    #: statuses answered to uploads whose body was still arriving at the kill (none expected)
    cut_off_answers: list[int] = field(default_factory=list)


def _enos_message(files: dict[str, bytes], *, lark: bool) -> dict[str, Any]:
    return {
        "params": [
            {"assetId": "a1", "attributes": {f"f{i}": f"local://{name}" for i, name in enumerate(files)}}
        ],
        "files": {
            name: {"featureId": f"f{i}", "assetId": "a1", "md5": md5hex(data)}
            | ({"fileLength": len(data)} if lark else {})
            for i, (name, data) in enumerate(files.items())
        },
    }


class Round:
    def __init__(self, server: Server, ledger: Ledger, number: int, rng: random.Random) -> None:
        self.server = server
        self.base = server.base_url
        self.ledger = ledger
        self.number = number
        self.rng = rng
        self.killed = asyncio.Event()

    def _payload(self) -> bytes:
        return os.urandom(self.rng.randint(16, 256) * 1024)

    async def graphql_upload(self, client: httpx.AsyncClient, index: int) -> None:
        data = self._payload()
        digest = hashlib.sha256(data).hexdigest()
        name = f"r{self.number}-g{index}.bin"
        variables = {"i": {"name": name, "associations": [{"type": "asset", "id": "a1"}],
                           "length": len(data), "sha256": digest}}  # fmt: skip
        created = await client.post(
            f"{self.base}/api/graphql",
            json={"query": CREATE, "variables": variables},
            headers={"Authorization": f"Automation {GQL_TOKEN}"},
        )
        upload = created.json()["data"]["createContentUpload"]
        put = await client.put(upload["uploadUrl"], content=data)
        if put.status_code == 201:
            self.ledger.uploads[put.json()["id"]] = digest

    async def device_upload(self, client: httpx.AsyncClient, index: int) -> None:
        data = self._payload()
        put = await client.put(
            f"{self.base}/api/devices/p1/d1/content",
            params={"name": f"r{self.number}-d{index}.bin"},
            content=data,
            headers={"Authorization": f"Device {DEVICE_SECRET}"},
        )
        if put.status_code == 201:
            self.ledger.uploads[put.json()["id"]] = hashlib.sha256(data).hexdigest()

    async def cut_off_upload(self, client: httpx.AsyncClient) -> None:
        """A device upload whose body is still arriving when the server is killed, whatever the
        machine's speed: every round cuts at least one request off (its bytes must not appear)."""

        async def body() -> AsyncIterator[bytes]:
            yield os.urandom(64 * 1024)
            await self.killed.wait()  # the rest comes after the kill, to a closed connection
            yield os.urandom(64 * 1024)

        answer = await client.put(
            f"{self.base}/api/devices/p1/d1/content",
            params={"name": f"r{self.number}-cut.bin"},
            content=body(),
            headers={"Authorization": f"Device {DEVICE_SECRET}"},
        )
        self.ledger.cut_off_answers.append(answer.status_code)  # the kill should have come first

    async def enos_upload(self, client: httpx.AsyncClient, token: str, index: int) -> None:
        files = {f"r{self.number}-e{index}-{k}.bin": self._payload() for k in range(ENOS_FILES_PER_REQUEST)}
        names = tuple(files)
        self.ledger.enos_requests[names] = False
        body, content_type = integration_body(_enos_message(files, lark=False), files)
        answer = await client.post(
            f"{self.base}/connect-service/v2.1/integration",
            params={"action": "postAttribute", "orgId": "o-enos"},
            content=body,
            headers={"apim-accesstoken": token, "Content-Type": content_type},
        )
        if answer.status_code == 200 and answer.json()["code"] == 0:
            self.ledger.enos_requests[names] = True

    async def lark_upload(self, client: httpx.AsyncClient, token: str, index: int) -> None:
        files = {f"r{self.number}-l{index}-{k}.bin": self._payload() for k in range(2)}
        body, content_type = integration_body(_enos_message(files, lark=True), {})
        answer = await client.post(
            f"{self.base}/connect-service/v2.1/integration",
            params={"action": "postAttribute", "orgId": "o-enos", "useLark": "true"},
            content=body,
            headers={"apim-accesstoken": token, "Content-Type": content_type},
        )
        for info in answer.json()["data"]["uriInfoList"]:
            data = files[info["filename"]]
            put = await client.put(info["uploadUrl"], content=data)
            if put.status_code == 201:
                self.ledger.lark[info["filename"]] = hashlib.sha256(data).hexdigest()

    async def delete(self, client: httpx.AsyncClient, content_id: str) -> None:
        self.ledger.delete_attempted.add(content_id)
        answer = await client.post(
            f"{self.base}/api/graphql",
            json={
                "query": "mutation($id: ID!) { deleteContent(id: $id) { id } }",
                "variables": {"id": content_id},
            },
            headers={"Authorization": f"Automation {GQL_TOKEN}"},
        )
        if answer.status_code == 200 and (answer.json().get("data") or {}).get("deleteContent"):
            self.ledger.deleted.add(content_id)

    async def run(self, kill_after: float) -> None:
        limits = httpx.Limits(max_connections=128)
        async with httpx.AsyncClient(timeout=30, limits=limits) as client:
            token = await asyncio.to_thread(access_token, self.server)
            live = [cid for cid in self.ledger.uploads if cid not in self.ledger.deleted]
            jobs = (
                [self.graphql_upload(client, i) for i in range(GRAPHQL_UPLOADS)]
                + [self.device_upload(client, i) for i in range(DEVICE_UPLOADS)]
                + [self.enos_upload(client, token, i) for i in range(ENOS_REQUESTS)]
                + [self.lark_upload(client, token, i) for i in range(LARK_REQUESTS)]
                + [self.delete(client, cid) for cid in self.rng.sample(live, min(DELETES, len(live)))]
                + [self.cut_off_upload(client)]
            )
            self.ledger.attempts += len(jobs)
            tasks = [asyncio.ensure_future(job) for job in jobs]
            await asyncio.sleep(kill_after)
            await asyncio.to_thread(kill_server, self.server)
            self.killed.set()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            self.ledger.acknowledged += sum(1 for result in results if result is None)


def _visible(server: Server) -> dict[str, tuple[str, str]]:
    """id -> (name, sha256) of every content of asset a1, its users' and device d1's."""
    found: dict[str, tuple[str, str]] = {}
    for devices in (None, [{"product_id": "p1", "device_id": "d1"}]):
        offset = 0
        while True:
            page = server.data(LISTING, {"d": devices, "o": offset}, token=GQL_TOKEN)["assetContents"]
            found.update({item["id"]: (item["name"], item["sha256"]) for item in page["assetContents"]})
            offset += 1000
            if offset >= page["totalCount"]:
                break
    return found


def _check(server: Server, ledger: Ledger) -> None:
    visible = _visible(server)
    for content_id, digest in ledger.uploads.items():
        if content_id in ledger.deleted:
            assert content_id not in visible, f"acknowledged delete of {content_id} undone"
        elif content_id in ledger.delete_attempted and content_id not in visible:
            ledger.deleted.add(content_id)  # the delete was done, its answer cut off
        else:
            assert visible.get(content_id, ("", ""))[1] == digest, f"acknowledged upload {content_id} lost"
    by_name = {name: digest for name, digest in visible.values()}
    assert not [name for name in by_name if name.endswith("-cut.bin")], "a body cut off by the kill is stored"
    for names, acknowledged in ledger.enos_requests.items():
        present = sum(1 for name in names if name in by_name)
        assert present in (0, len(names)), f"EnOS request {names} half visible: {present} of {len(names)}"
        assert present == len(names) or not acknowledged, f"acknowledged EnOS request {names} lost"
    for name, digest in ledger.lark.items():
        assert by_name.get(name) == digest, f"acknowledged Lark upload {name} lost"


def _fsck_clean(data_dir: Path) -> None:
    checked = run_cli("fsck", "--verify", "--data-dir", str(data_dir))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_sigkill_rounds_lose_nothing_acknowledged(tmp_path: Path) -> None:
    rng = random.Random(7)
    ledger = Ledger()
    server = seed_and_start(tmp_path, enos_document(), enos_files())
    data_dir = server.data_dir
    try:
        for number in range(ROUNDS):
            asyncio.run(Round(server, ledger, number, rng).run(kill_after=rng.uniform(1.0, 2.5)))
            _fsck_clean(data_dir)
            server = start_server(data_dir)
            _check(server, ledger)
        server.stop()
        swept = run_cli("gc", "--grace", "0", "--data-dir", str(data_dir))
        assert swept.returncode == 0, swept.stdout + swept.stderr
        assert temporaries(data_dir) == []
        _fsck_clean(data_dir)
        server = start_server(data_dir)
        _check(server, ledger)
    finally:
        server.stop()
    # The rounds must have had something to lose: acknowledged work on every path, and kills
    # that cut requests off.
    assert len(ledger.uploads) >= ROUNDS * 5 and ledger.lark and any(ledger.enos_requests.values())
    assert ledger.acknowledged < ledger.attempts
    assert ledger.cut_off_answers == [], "an upload whose body was still arriving got an answer"
    print(
        f"\n{ROUNDS} SIGKILL rounds: {ledger.attempts} requests, {ledger.acknowledged} acknowledged, "
        f"{len(ledger.uploads)} uploads and {len(ledger.deleted)} deletes checked, "
        f"{len(ledger.enos_requests)} EnOS multi-file requests ({sum(ledger.enos_requests.values())} "
        f"acknowledged), {len(ledger.lark)} Lark files"
    )
