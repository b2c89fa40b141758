"""Behind a reverse proxy, over real sockets: the forwarded client drives the per-address bounds,
the access log and the audit log, and the forwarded scheme the signed URLs; from a peer that is
not a trusted proxy the same headers change nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.backends import local_blobs_only
from tests.conftest import RW, world_document, world_files
from tests.helpers import Server, run_cli, seed_and_start

QUERY = "{ currentToken { name } }"
URL = '{ assetContents(filters: {association: {type: "asset", id: "a-pump-7"}}) { assetContents { url } } }'
LIMITS = {"ASSETFILES_RATE_LIMIT_AUTH_FAILURES": "3/minute", "ASSETFILES_PUBLIC_URL": ""}


def forwarded_from(
    server: Server, client: str, token: str, query: str = QUERY, proto: str | None = None
) -> int:
    headers = {"Authorization": f"Automation {token}", "X-Forwarded-For": f"{client}, 127.0.0.1"}
    if proto:
        headers["X-Forwarded-Proto"] = proto
    return server.post(server.graphql_url, json={"query": query}, headers=headers).status_code


@pytest.fixture(scope="module")
def behind_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {**LIMITS, "ASSETFILES_TRUSTED_PROXIES": '["127.0.0.1"]', "ASSETFILES_LOG_FORMAT": "json"}
    running = seed_and_start(tmp_path_factory.mktemp("proxied"), world_document(), world_files(), env)
    yield running
    running.stop()


def test_the_forwarded_client_is_limited_and_logged_not_the_proxy(behind_proxy: Server) -> None:
    for _ in range(3):
        assert forwarded_from(behind_proxy, "203.0.113.9", "tok-wrong-0123456789") == 401
    assert forwarded_from(behind_proxy, "203.0.113.9", RW) == 429  # that client has no failures left
    assert forwarded_from(behind_proxy, "203.0.113.10", RW) == 200  # another client behind the proxy
    log = behind_proxy.data_dir.parent / f"server-{behind_proxy.data_dir.name}.log"
    clients: set[str] = set()
    deadline = time.monotonic() + 30  # a request's line is written once its answer has gone
    while not {"203.0.113.9", "203.0.113.10"} <= clients and time.monotonic() < deadline:
        time.sleep(0.1)
        lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
        clients = {line["client"] for line in lines if line.get("path") == "/api/graphql"}
    assert clients == {"203.0.113.9", "203.0.113.10"}  # never the proxy's own address


@local_blobs_only  # on S3 a content's URL is the object store's own
def test_the_forwarded_scheme_makes_signed_urls_https(behind_proxy: Server) -> None:
    headers = {
        "Authorization": f"Automation {RW}",
        "X-Forwarded-For": "203.0.113.20",
        "X-Forwarded-Proto": "https",
    }
    answer = behind_proxy.post(behind_proxy.graphql_url, json={"query": URL}, headers=headers).json()
    urls = [item["url"] for item in answer["data"]["assetContents"]["assetContents"]]
    assert urls and all(url.startswith("https://") for url in urls), urls


def test_failed_sign_ins_are_audited_with_the_forwarded_address_and_face(tmp_path: Path) -> None:
    env = {"ASSETFILES_TRUSTED_PROXIES": '["127.0.0.0/8"]'}
    server = seed_and_start(tmp_path, world_document(), world_files(), env)
    try:
        assert forwarded_from(server, "198.51.100.23", "tok-wrong-0123456789") == 401
    finally:
        server.stop()  # flushes the failure counts
    shown = run_cli("audit", "--json", "--data-dir", str(server.data_dir))
    assert shown.returncode == 0, shown.stderr
    failures = [json.loads(line) for line in shown.stdout.splitlines() if '"auth.failed"' in line]
    assert failures, shown.stdout
    assert failures[0]["face"] == "graphql" and failures[0]["detail"] == {"address": "198.51.100.23"}


def test_headers_from_a_peer_that_is_not_a_trusted_proxy_are_ignored(tmp_path: Path) -> None:
    env = {**LIMITS, "ASSETFILES_TRUSTED_PROXIES": '["10.0.0.0/8"]'}
    server = seed_and_start(tmp_path, world_document(), world_files(), env)
    try:
        # each failure claims another client; all count against the real peer, 127.0.0.1
        for index in range(3):
            assert forwarded_from(server, f"203.0.113.{index}", "tok-wrong-0123456789") == 401
        assert forwarded_from(server, "203.0.113.99", RW) == 429
        headers = {"Authorization": f"Automation {RW}", "X-Forwarded-Proto": "https"}
        assert server.post(server.graphql_url, json={"query": QUERY}, headers=headers).status_code == 429
    finally:
        server.stop()
