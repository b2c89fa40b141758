"""Load: 60 s at 64 concurrent connections mixing listings, URL resolution, downloads (each
checked against its sha256) and uploads, on loopback; then ``assetfiles sync`` of the loaded asset.
Zero errors and zero lost files are required; p50/p99 per operation are printed.

One server process on the suite's backend; with ``ASSETFILES_TEST_BACKEND=postgres`` and
``ASSETFILES_TEST_BLOBS=s3`` (how .ci/run runs this file a second time) on the two-node topology
of tests/cluster.py: every request through nginx balancing two nodes that share the PostgreSQL
catalog, the SeaweedFS bucket and Redis (each request counted there against a per-credential
limit set too high to refuse any, so that the shared rate limit's cost is in the figures).
``ASSETFILES_LOAD_SECONDS`` shortens the run for development.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import statistics
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.backends import BACKEND, BLOBS
from tests.cluster import missing_parts, running_cluster
from tests.helpers import Server, run_cli, seed_and_start

pytestmark = pytest.mark.slow

SECONDS = float(os.environ.get("ASSETFILES_LOAD_SECONDS", "60"))
CONNECTIONS = 64
TOKEN = "tok-load-rw-0123456789"
SEEDED = 200
LISTING = """query($o: Int) { assetContents(filters: {association: {type: "asset", id: "a-load"}},
  pagination: {limit: 50, offset: $o}) { totalCount assetContents { id name length sha256 } } }"""
URL = "query($id: ID!) { content(id: $id) { url sha256 } }"
CREATE = "mutation($i: ContentUploadInput!) { createContentUpload(input: $i) { id uploadUrl } }"
#: operation -> share of the requests
MIX = {"listing": 35, "url": 25, "download": 25, "upload": 15}


class Load:
    """The mixed load (also bench/load.py's): ``connections`` clients for ``seconds``."""

    def __init__(
        self,
        bases: list[str],
        known: dict[str, str],
        seconds: float = SECONDS,
        connections: int = CONNECTIONS,
    ) -> None:
        self.bases = bases
        self.seconds = seconds
        self.connections = connections
        #: content id -> sha256 of everything in a-load (seeded and uploaded under load)
        self.known = dict(known)
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.errors: list[str] = []

    async def _gql(self, client: httpx.AsyncClient, base: str, query: str, variables: dict[str, Any]) -> Any:
        answer = await client.post(f"{base}/api/graphql", json={"query": query, "variables": variables},
                                   headers={"Authorization": f"Automation {TOKEN}"})  # fmt: skip
        body = answer.json()
        if answer.status_code != 200 or body.get("errors"):
            raise AssertionError(f"{answer.status_code} {answer.text[:300]}")
        return body["data"]

    async def listing(self, client: httpx.AsyncClient, base: str, rng: random.Random) -> None:
        offset = rng.randrange(0, max(1, len(self.known) - 50))
        await self._gql(client, base, LISTING, {"o": offset})

    async def url(self, client: httpx.AsyncClient, base: str, rng: random.Random) -> None:
        content_id = rng.choice(list(self.known))
        data = await self._gql(client, base, URL, {"id": content_id})
        assert data["content"]["sha256"] == self.known[content_id]

    async def download(self, client: httpx.AsyncClient, base: str, rng: random.Random) -> None:
        content_id = rng.choice(list(self.known))
        url = (await self._gql(client, base, URL, {"id": content_id}))["content"]["url"]
        answer = await client.get(url)
        assert answer.status_code == 200, answer.status_code
        assert hashlib.sha256(answer.content).hexdigest() == self.known[content_id]

    async def upload(self, client: httpx.AsyncClient, base: str, rng: random.Random) -> None:
        data = rng.randbytes(rng.randint(4, 64) * 1024)
        digest = hashlib.sha256(data).hexdigest()
        target = [{"type": "asset", "id": "a-load"}]
        variables = {"i": {"name": f"load-{digest[:16]}.bin", "associations": target, "length": len(data),
                           "sha256": digest}}  # fmt: skip
        upload = (await self._gql(client, base, CREATE, variables))["createContentUpload"]
        answer = await client.put(upload["uploadUrl"], content=data)
        assert answer.status_code == 201, answer.text
        self.known[upload["id"]] = digest

    async def worker(self, index: int, deadline: float) -> None:
        rng = random.Random(index)
        base = self.bases[index % len(self.bases)]
        operations = list(MIX)
        weights = list(MIX.values())
        async with httpx.AsyncClient(timeout=60) as client:  # one keep-alive connection per worker
            while time.monotonic() < deadline:
                name = rng.choices(operations, weights)[0]
                started = time.perf_counter()
                try:
                    await getattr(self, name)(client, base, rng)
                except Exception as exc:
                    self.errors.append(f"{name}: {type(exc).__name__}: {exc}")
                self.latencies[name].append(time.perf_counter() - started)

    async def run(self) -> None:
        deadline = time.monotonic() + self.seconds
        await asyncio.gather(*(self.worker(index, deadline) for index in range(self.connections)))

    def figures(self) -> dict[str, dict[str, float]]:
        """Per operation: requests, requests per second, p50 and p99 in milliseconds."""
        result = {}
        for name, values in sorted(self.latencies.items()):
            ordered = sorted(values)
            p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
            result[name] = {
                "requests": len(values),
                "per_s": round(len(values) / self.seconds, 1),
                "p50_ms": round(statistics.median(ordered) * 1000, 1),
                "p99_ms": round(p99 * 1000, 1),
            }
        return result

    def report(self, label: str) -> str:
        lines = [
            f"{label}: {self.seconds:.0f} s at {self.connections} connections, {len(self.errors)} errors"
        ]
        for name, row in self.figures().items():
            lines.append(
                f"  {name:9} {row['requests']:6.0f} requests  {row['per_s']:7.1f}/s  "
                f"p50 {row['p50_ms']:7.1f} ms  p99 {row['p99_ms']:7.1f} ms"
            )
        return "\n".join(lines)


def _document() -> tuple[dict[str, Any], dict[str, bytes]]:
    rng = random.Random(5)
    files = {f"files/seed-{i:03d}.bin": rng.randbytes(rng.randint(1, 32) * 1024) for i in range(SEEDED)}
    asset = {"id": "a-load", "name": "Loaded", "content": [{"path": path} for path in files]}
    document = {"organizations": [{"id": "o-load", "assets": [asset],
        "tokens": [{"name": "rw", "secret": TOKEN, "permissions": ["read", "write"]}]}]}  # fmt: skip
    return document, files


def _listed(server: Server) -> dict[str, str]:
    found: dict[str, str] = {}
    offset = 0
    while True:
        page = server.data(LISTING.replace("limit: 50", "limit: 1000"), {"o": offset}, token=TOKEN)
        found.update({item["id"]: item["sha256"] for item in page["assetContents"]["assetContents"]})
        offset += 1000
        if offset >= page["assetContents"]["totalCount"]:
            return found


def _local_digests(directory: Path) -> list[str]:
    return sorted(
        hashlib.sha256(path.read_bytes()).hexdigest()
        for path in directory.rglob("*")
        if path.is_file() and not any(part.startswith(".assetfiles") for part in path.parts)
    )


def test_sixty_seconds_of_mixed_load_then_a_complete_sync(tmp_path: Path) -> None:
    document, files = _document()
    if BACKEND == "postgres" and BLOBS == "s3":
        reason = missing_parts()
        if reason:
            pytest.skip(reason)
        limits = {"ASSETFILES_RATE_LIMIT_PER_CREDENTIAL": "1000000/minute"}
        with running_cluster(tmp_path / "cluster", document, files, limits) as cluster:
            balancer = Server(cluster.base_url, cluster.nodes[0].data_dir, cluster.nodes[0].background)
            _load_then_sync(tmp_path, balancer, "two nodes behind nginx, PostgreSQL + SeaweedFS + Redis")
        return
    server = seed_and_start(tmp_path, document, files)
    try:
        _load_then_sync(tmp_path, server, f"one process, {BACKEND} + {BLOBS}")
    finally:
        server.stop()


def _load_then_sync(tmp_path: Path, entry: Server, label: str) -> None:
    """The load, then a sync, all sent to ``entry`` (a server, or the balancer in front of nodes)."""
    load = Load([entry.base_url], _listed(entry))
    asyncio.run(load.run())
    print("\n" + load.report(label))
    assert load.errors == [], load.errors[:10]
    assert sum(len(values) for values in load.latencies.values()) >= load.connections * load.seconds / 10
    listed = _listed(entry)
    assert listed == load.known, "an acknowledged upload is missing from the listing"
    mirror = tmp_path / "mirror"
    synced = run_cli("sync", "a-load", str(mirror), "--url", entry.base_url, "--token", TOKEN, "--quiet")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert _local_digests(mirror) == sorted(listed.values())
    print(f"  sync: {len(listed)} files, all present with their sha256")
