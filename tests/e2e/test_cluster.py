"""Two nodes behind nginx on one PostgreSQL, one SeaweedFS and one Redis behave as one server
(tests/cluster.py): rate limits hold across nodes, state made on one node works on the other,
a sync through the balancer completes, and SIGKILL of a node under load loses nothing that was
acknowledged while the other keeps serving."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import random
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.cluster import Cluster, missing_parts, running_cluster
from tests.e2e.test_events import Stream
from tests.helpers import descendants, device_login_sign, encryption, run_cli, sha256

pytestmark = pytest.mark.skipif(missing_parts() is not None, reason=str(missing_parts()))

TOKEN = "tok-cluster-rw-0123456789"
LIMITED = "tok-cluster-limited-0123"
SYNC = "tok-cluster-sync-0123456"
APP, APP_SECRET = "ak-cluster", "as-cluster-secret-0123"
PER_CREDENTIAL = 40
AUTH_FAILURES = 6
FILES = {f"files/f{index}.bin": random.Random(index).randbytes(20_000 + index) for index in range(12)}
CREATE = "mutation($i: ContentUploadInput!) { createContentUpload(input: $i) { id uploadUrl } }"
PING = '{ assetContents(filters: {association: {type: "asset", id: "a"}}) { totalCount } }'
LISTING = """query($o: Int) { assetContents(filters: {association: {type: "asset", id: "a"}},
  pagination: {limit: 1000, offset: $o}) { totalCount assetContents { id sha256 url } } }"""


CONTENT = [{"path": path, "enos_category": "feature"} for path in FILES]


def _document() -> dict[str, Any]:
    return {"organizations": [{"id": "o-cluster",
        "tokens": [{"name": "rw", "secret": TOKEN, "permissions": ["read", "write"]},
                   {"name": "limited", "secret": LIMITED, "permissions": ["read"]},
                   {"name": "sync", "secret": SYNC, "permissions": ["read"]}],
        "applications": [{"app_key": APP, "app_secret": APP_SECRET, "policies": ["asset:read"]}],
        "products": [{"id": "pk-c", "devices": [{"id": "dk-c", "secret": "dk-c-secret-0123456"}]}],
        "assets": [{"id": "a", "name": "A", "content": CONTENT}]}]}  # fmt: skip


#: Each credential has PER_CREDENTIAL requests a minute across the cluster: the limit test spends
#: LIMITED's, the sync SYNC's, and the other tests a few of TOKEN's each.
LIMITS = {
    "ASSETFILES_RATE_LIMIT_PER_CREDENTIAL": f"{PER_CREDENTIAL}/minute",
    "ASSETFILES_RATE_LIMIT_AUTH_FAILURES": f"{AUTH_FAILURES}/minute",
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("cluster"), _document(), FILES, LIMITS) as running:
        yield running


def _gql(base: str, query: str, variables: dict[str, Any] | None = None, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Automation {kwargs.pop('token', TOKEN)}", **kwargs.pop("headers", {})}
    return httpx.post(f"{base}/api/graphql", json={"query": query, "variables": variables or {}},
                      headers=headers, timeout=30, **kwargs)  # fmt: skip


def _listed(base: str) -> dict[str, dict[str, str]]:
    page = _gql(base, LISTING, {"o": 0}).json()["data"]["assetContents"]
    return {item["id"]: item for item in page["assetContents"]}


def _upload(base: str, name: str, data: bytes) -> str:
    """createContentUpload and PUT through ``base``; the content id once the PUT answered 201."""
    ticket = _gql(base, CREATE, {"i": {"name": name, "length": len(data), "sha256": sha256(data),
                                       "associations": [{"type": "asset", "id": "a"}]}})  # fmt: skip
    assert ticket.status_code == 200, ticket.text
    upload = ticket.json()["data"]["createContentUpload"]
    answer = httpx.put(upload["uploadUrl"], content=data, timeout=30)
    assert answer.status_code == 201, answer.text
    content_id: str = upload["id"]
    return content_id


def test_the_per_credential_limit_holds_across_nodes(cluster: Cluster) -> None:
    """Requests alternate between the nodes directly: together they allow the limit, not twice it."""
    statuses: dict[str, list[int]] = {node.base_url: [] for node in cluster.nodes}
    for index in range(PER_CREDENTIAL + 20):
        node = cluster.nodes[index % 2]
        answer = _gql(node.base_url, PING, token=LIMITED)
        statuses[node.base_url].append(answer.status_code)
        if answer.status_code == 429:
            assert int(answer.headers["retry-after"]) >= 1
            assert answer.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    every = [status for answers in statuses.values() for status in answers]
    allowed = [answers.count(200) for answers in statuses.values()]
    print(f"\n  cluster: {PER_CREDENTIAL}/minute per credential over two nodes: {every.count(200)} allowed "
          f"({allowed[0]} + {allowed[1]}), {every.count(429)} refused")  # fmt: skip
    assert every.count(200) == PER_CREDENTIAL and every.count(429) == 20, statuses
    assert all(429 in answers for answers in statuses.values())  # each node refused past the shared count


def test_failed_sign_ins_per_address_are_counted_across_nodes(cluster: Cluster) -> None:
    """One client address (named by the balancer's X-Forwarded-For) guessing tokens on both nodes
    gets the limit in all, then 429 on either; another address is not held back."""
    guesser = {"X-Forwarded-For": "203.0.113.77"}
    statuses = [
        _gql(cluster.nodes[index % 2].base_url, PING,
             token=f"tok-wrong-guess-{index:04d}", headers=guesser).status_code
        for index in range(AUTH_FAILURES + 4)
    ]  # fmt: skip
    print(f"\n  cluster: {AUTH_FAILURES}/minute failed sign-ins per address over two nodes: {statuses}")
    assert statuses == [401] * AUTH_FAILURES + [429] * 4, statuses
    bystander = _gql(cluster.nodes[1].base_url, PING,
                     headers={"X-Forwarded-For": "203.0.113.78"})  # fmt: skip
    assert bystander.status_code == 200
    through_balancer = _gql(cluster.base_url, PING, token="tok-wrong-again-0000",
                            headers=guesser)  # fmt: skip
    assert through_balancer.status_code == 429  # the balancer passes the address on: still counted


def test_an_event_stream_on_one_node_sees_changes_made_on_the_other(cluster: Cluster) -> None:
    first, second = cluster.nodes
    stream = Stream(first.base_url, TOKEN).start()
    assert stream.status == 200
    time.sleep(0.3)  # the stream has read the newest id before the change below
    content_id = _upload(second.base_url, "seen-elsewhere.txt", b"made on the second node")
    event = stream.next(timeout=20)
    assert event["data"]["change"] == "created" and event["data"]["id"] == content_id


def test_what_one_node_issues_works_on_the_other(cluster: Cluster) -> None:
    first, second = cluster.nodes
    stamp = int(time.time() * 1000)
    body = {"appKey": APP, "encryption": encryption(APP, stamp, APP_SECRET), "timestamp": stamp}
    issued = httpx.post(f"{first.base_url}/apim-token-service/v2.0/token/get", json=body, timeout=30)
    assert issued.status_code == 200, issued.text
    token = issued.json()["data"]["accessToken"]
    listing = _gql(first.base_url, '{ assetContents(filters: {association: {type: "asset", id: "a"}, '
                   'name: "f*"}) { assetContents { enos { fileUri } } } }')  # fmt: skip
    uri = listing.json()["data"]["assetContents"]["assetContents"][0]["enos"]["fileUri"]
    params = {
        "action": "download",
        "orgId": "o-cluster",
        "assetId": "a",
        "category": "feature",
        "fileUri": uri,
    }
    downloaded = httpx.get(f"{second.base_url}/connect-service/v2.1/files", params=params,
                           headers={"apim-accesstoken": token}, follow_redirects=True)  # fmt: skip
    assert downloaded.status_code == 200 and downloaded.content in FILES.values(), downloaded.text[:300]
    # an upload reservation signed by one node is taken by the other
    data = os.urandom(5000)
    ticket = _gql(first.base_url, CREATE, {"i": {"name": "crossed.bin", "length": len(data),
                  "sha256": sha256(data), "associations": [{"type": "asset", "id": "a"}]}})  # fmt: skip
    upload = ticket.json()["data"]["createContentUpload"]
    crossed = upload["uploadUrl"].replace(first.base_url, second.base_url)
    assert httpx.put(crossed, content=data, timeout=30).status_code == 201
    assert httpx.get(_listed(second.base_url)[upload["id"]]["url"], timeout=30).content == data
    # an EnOS device session opened on one node is honoured by the other
    sign = device_login_sign("pk-c", "dk-c", 60000, "dk-c-secret-0123456")
    login = {"signMethod": "sha256", "lifetime": 60000, "sign": sign}
    opened = httpx.post(f"{first.base_url}/auth/pk-c/dk-c", json=login, timeout=30).json()
    session = opened["data"]["sessionId"]
    query = {"sessionId": session, "fileUri": "enos-connect://0123456789abcdef.txt"}
    unknown = httpx.get(f"{second.base_url}/multipart/sys/pk-c/dk-c/file/download/url", params=query)
    assert unknown.status_code == 404 and unknown.json()["code"] == 404  # signed in; the file is not there


def test_a_resumable_upload_moves_between_nodes(cluster: Cluster) -> None:
    """Each PATCH at the other node: offsets, S3 parts and the tail live where both reach them, and
    the node that completes it hashes what the other received."""
    data = random.Random(23).randbytes(21 * 1024 * 1024)
    tus = {"Tus-Resumable": "1.0.0", "Authorization": f"Automation {TOKEN}"}
    metadata = (
        "filename " + base64.b64encode(b"clip.mp4").decode() + ",asset " + base64.b64encode(b"a").decode()
    )
    sizing = {"Upload-Length": str(len(data)), "Upload-Metadata": metadata}
    created = httpx.post(f"{cluster.nodes[0].base_url}/files/", timeout=30, headers={**tus, **sizing})
    assert created.status_code == 201, created.text
    path = urlsplit(created.headers["location"]).path
    offset = 0
    # chunks under a part, one byte, across a part, and the rest
    for index, size in enumerate((3 * 1024 * 1024, 1, 9 * 1024 * 1024, len(data))):
        node = cluster.nodes[(index + 1) % 2].base_url
        chunk = data[offset : offset + size]
        headers = {**tus, "Content-Type": "application/offset+octet-stream", "Upload-Offset": str(offset)}
        answer = httpx.patch(node + path, content=chunk, headers=headers, timeout=60)
        assert answer.status_code == 204, answer.text
        offset += len(chunk)
        assert httpx.head(cluster.nodes[index % 2].base_url + path, headers=tus).headers[
            "upload-offset"
        ] == str(offset)
    content_id = answer.headers["upload-content-id"]
    assert _listed(cluster.base_url)[content_id]["sha256"] == sha256(data)
    assert httpx.get(_listed(cluster.base_url)[content_id]["url"], timeout=60).content == data


def test_a_sync_through_the_balancer_completes(cluster: Cluster, tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    result = run_cli("sync", "a", str(mirror), "--url", cluster.base_url, "--token", SYNC, "--quiet")
    assert result.returncode == 0, result.stdout + result.stderr
    got = sorted(hashlib.sha256(path.read_bytes()).hexdigest() for path in mirror.rglob("*.bin"))
    assert set(got) >= {sha256(data) for data in FILES.values()}


def test_without_redis_the_nodes_keep_serving_and_say_so(cluster: Cluster) -> None:
    """Redis gone: requests are still answered (limits counted per node meanwhile), and each
    node that noticed logs it once and counts it in assetfiles_backend_errors_total."""
    cluster.redis.stop()
    for node in cluster.nodes:
        answer = _gql(node.base_url, PING, token=SYNC)
        assert answer.status_code == 200, answer.text
        metrics = httpx.get(f"{node.base_url}/metrics", timeout=30).text
        assert 'assetfiles_backend_errors_total{backend="rate_limits"}' in metrics
        log = node.background.log
        assert log is not None and "rate-limit storage redis://127.0.0.1:" in log.read_text()


def _sigkill(pid: int) -> None:
    for process in reversed(descendants(pid)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(process, signal.SIGKILL)


def test_sigkill_of_a_node_under_load_loses_nothing_acknowledged(tmp_path: Path) -> None:
    """Uploads run through the balancer on 8 threads; one node is killed after 60 of 240. Every
    upload that was answered 201 is listed and downloads byte-identical, and once the balancer has
    noticed, the surviving node takes every upload."""
    with running_cluster(tmp_path, _document(), FILES) as cluster:
        victim = cluster.nodes[0].background.process
        assert victim is not None
        acknowledged: dict[str, bytes] = {}
        outcomes: list[tuple[int, str]] = []
        lock = threading.Lock()

        def one(index: int) -> None:
            data = os.urandom(2048) + index.to_bytes(4, "big")
            if index == 60:
                _sigkill(victim.pid)
            try:
                content_id = _upload(cluster.base_url, f"load-{index}.bin", data)
            except (AssertionError, httpx.HTTPError, KeyError, ValueError) as error:
                with lock:
                    outcomes.append((index, f"failed: {error!s:.120}"))
                return
            with lock:
                acknowledged[content_id] = data
                outcomes.append((index, "ok"))

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(one, range(240)))
        assert victim.wait(timeout=10) == -signal.SIGKILL  # the node really died mid-run
        failed = sorted(index for index, outcome in outcomes if outcome != "ok")
        late = [index for index in failed if index >= 120]
        print(f"\n  cluster SIGKILL: {len(acknowledged)} of 240 uploads acknowledged, failed: {failed}")
        assert not late, f"uploads failed long after the kill: {late}"
        assert len(acknowledged) >= 200
        listed = _listed(cluster.base_url)
        for content_id, data in acknowledged.items():
            assert content_id in listed, f"acknowledged upload {content_id} is not listed"
            assert listed[content_id]["sha256"] == sha256(data)
        sample = random.Random(1).sample(sorted(acknowledged), 20)
        for content_id in sample:
            assert httpx.get(listed[content_id]["url"], timeout=30).content == acknowledged[content_id]
