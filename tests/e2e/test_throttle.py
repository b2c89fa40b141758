"""Rate limits, per-address request caps and body time bounds, on a real server over real
sockets: 429 with Retry-After in each face's own format, idle and slow bodies closed with 408."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import RO, RW, world_document, world_files
from tests.e2e.test_enos import APPS, enos_document, enos_files, token_request
from tests.helpers import Server, seed_and_start

LIMITS = {
    "ASSETFILES_RATE_LIMIT_AUTH_FAILURES": "5/minute",
    "ASSETFILES_RATE_LIMIT_PER_CREDENTIAL": "40/minute",
    "ASSETFILES_MAX_REQUESTS_PER_ADDRESS": "8",
}
#: Tight body time bounds, only for the server whose tests are about them: elsewhere a request
#: on a loaded machine must not meet them.
BODY_BOUNDS = {
    **LIMITS,
    "ASSETFILES_MAX_REQUESTS_PER_ADDRESS": "0",
    "ASSETFILES_BODY_IDLE_TIMEOUT_SECONDS": "1",
    "ASSETFILES_BODY_MIN_BYTES_PER_SECOND": "2000",
}
QUERY = "{ currentToken { name } }"


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = seed_and_start(tmp_path_factory.mktemp("limited"), world_document(), world_files(), LIMITS)
    yield running
    running.stop()


def test_failed_sign_ins_are_limited_per_address_on_every_face(limited: Server) -> None:
    for _ in range(5):
        assert limited.gql(QUERY, token="tok-wrong-0123456789").status_code == 401
    refused = limited.gql(QUERY, token=RW)  # even a good token, from this address, for now
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 61
    error = refused.json()["errors"][0]
    assert error["extensions"]["code"] == "RATE_LIMITED" and "failed sign-ins" in error["message"]
    # The EnOS face answers in its envelope, the transfer face in its JSON error.
    enos = httpx.get(f"{limited.base_url}/connect-service/v2.1/files", params={"action": "getFileInfo"})
    assert enos.status_code == 429 and enos.headers["retry-after"]
    assert enos.json()["code"] == 429
    transfer = httpx.put(f"{limited.base_url}/api/devices/p7k2q9/pump-007/content", content=b"x")
    assert transfer.status_code == 429 and transfer.json()["error"]["code"] == "RATE_LIMITED"
    # Health checks are not a face: they still answer.
    assert httpx.get(f"{limited.base_url}/healthz").status_code == 200


def test_each_credential_is_rate_limited(tmp_path: Path) -> None:
    running = seed_and_start(tmp_path, world_document(), world_files(), LIMITS)
    try:
        statuses = [running.gql(QUERY, token=RO).status_code for _ in range(45)]
        assert statuses[:40] == [200] * 40
        assert set(statuses[40:]) == {429}
        assert running.gql(QUERY, token=RW).status_code == 200  # another token is not affected
    finally:
        running.stop()


def _connect(server: Server) -> socket.socket:
    host, port = server.base_url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _headers_without_body(server: Server, length: int = 1000) -> bytes:
    return (
        f"POST /api/graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Automation {RW}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


@pytest.fixture(scope="module")
def body_bounds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Body time bounds of 1 s idle and 2,000 B/s; no cap on requests in flight."""
    running = seed_and_start(tmp_path_factory.mktemp("bodies"), world_document(), world_files(), BODY_BOUNDS)
    yield running
    running.stop()


def test_an_idle_body_is_refused_and_the_connection_closed(body_bounds: Server) -> None:
    connection = _connect(body_bounds)
    connection.sendall(_headers_without_body(body_bounds))
    answer = connection.recv(65536).decode()
    assert answer.startswith("HTTP/1.1 408"), answer
    assert '"REQUEST_TIMEOUT"' in answer and "nothing received for 1 s" in answer
    connection.close()


def test_a_trickling_body_is_refused(body_bounds: Server) -> None:
    connection = _connect(body_bounds)
    connection.sendall(_headers_without_body(body_bounds, 100_000))
    connection.settimeout(0.2)
    answer = b""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not answer:
        try:
            connection.sendall(b" " * 100)  # 100 bytes every 0.2 s: 500 B/s, under 2,000
            answer = connection.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            break
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"under the minimum" in answer


@pytest.mark.parametrize(
    ("path", "auth"),
    [("/api/graphql", f"Automation {RW}"), ("/api/devices/p7k2q9/pump-007/content?name=x.bin",
                                            "Device dev-pump-007-secret")],
)  # fmt: skip
@pytest.mark.parametrize(
    "chunk_size", [b"f" * 32, b"-5", b"zz", b"1" * 5000, b"10;" + b"x" * 70_000], ids=str
)
def test_malformed_chunked_framing_is_a_400_and_stores_nothing(
    body_bounds: Server, path: str, auth: str, chunk_size: bytes
) -> None:
    """Chunk sizes that overflow, are negative, not hexadecimal, or drown in extensions."""
    connection = _connect(body_bounds)
    connection.sendall(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        + chunk_size
        + b'\r\n{"query": "{ currentToken { name } }"}\r\n0\r\n\r\n'
    )
    answer = connection.recv(65536).decode(errors="replace")
    connection.close()
    assert answer.startswith("HTTP/1.1 400"), answer
    assert '"CLIENT_DISCONNECTED"' in answer or "Bad Request" in answer
    assert not [p for p in (body_bounds.data_dir / "blobs" / "tmp").glob("*") if p.is_file()]


def test_a_huge_chunk_that_never_comes_is_408(body_bounds: Server) -> None:
    connection = _connect(body_bounds)
    connection.sendall(
        f"POST /api/graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Automation {RW}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n7fffffffffffffff\r\n{}".encode()
    )
    answer = connection.recv(65536).decode()
    connection.close()
    assert answer.startswith("HTTP/1.1 408"), answer


def test_requests_in_flight_per_address_are_capped(tmp_path: Path) -> None:
    """Eight connections holding unsent bodies take this address's slots: the ninth request is
    refused at once instead of waiting, and the slots come back when those are closed."""
    env = {**LIMITS, "ASSETFILES_RATE_LIMIT_PER_CREDENTIAL": ""}
    limited = seed_and_start(tmp_path, world_document(), world_files(), env)
    try:
        _hold_all_slots(limited)
    finally:
        limited.stop()


def _hold_all_slots(limited: Server) -> None:
    held = []
    for _ in range(8):
        connection = _connect(limited)
        connection.sendall(_headers_without_body(limited))
        held.append(connection)
    time.sleep(0.3)
    try:
        answer = limited.gql(QUERY, token=RO)
        assert answer.status_code == 429, answer.text
        assert "in flight" in answer.json()["errors"][0]["message"]
    finally:
        for connection in held:
            connection.close()
    deadline = time.monotonic() + 5
    while limited.gql(QUERY, token=RO).status_code == 429 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert limited.gql(QUERY, token=RO).status_code == 200


def test_failed_token_service_sign_ins_count_too(tmp_path: Path) -> None:
    """Wrong application signatures on the EnOS token service are failed sign-ins like any other:
    past the limit even the right signature gets 429, in the token service's envelope."""
    running = seed_and_start(tmp_path, enos_document(), enos_files(), LIMITS)
    try:
        for _ in range(5):
            wrong = token_request(running, "ak-rw", "not-the-secret")
            assert wrong.json()["status"] == 1003, wrong.text
        refused = token_request(running, "ak-rw", APPS["ak-rw"][0])
        assert refused.status_code == 429 and refused.headers["retry-after"]
        assert refused.json()["status"] == 429 and refused.json()["business"] == "apim-token-service"
    finally:
        running.stop()
