"""Promises that must hold under races and attack, on a real server over real sockets (SQLite, and
PostgreSQL where ASSETFILES_TEST_BACKEND says so): usage under concurrent deletes, the event feed
under concurrent writers, slow token bodies, revocation, failed sign-ins sent at once, metrics
labels, readiness under a hung catalog, worker respawn, apply re-charging usage, and the bounds
of quota and retention numbers."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from assetfiles.cli.background import BackgroundServer
from assetfiles.store.database import normalize_url
from tests.backends import backend_env, catalog_url
from tests.e2e.test_enos import token_request
from tests.helpers import (
    SECRET_KEY,
    Server,
    descendants,
    run_cli,
    seed_and_start,
    server_sent_events,
    sha256,
    start_server,
    write_fixture,
)

RW = "tok-promise-rw-0123456789"
SPARE = "tok-promise-spare-0123456789"
DOOMED = "tok-promise-doomed-0123456789"
OTHER = "tok-promise-other-0123456789"
APP_KEY, APP_SECRET = "ak-promise", "as-promise-secret"
USAGE = "{ organizationUsage { storedBytes contentCount } }"
DELETE = "mutation($i: ID!) { deleteContent(id: $i) { id } }"
SET_TAGS = 'mutation($i: ID!, $v: String!) { setContentTags(id: $i, tags: [{name: "k", value: $v}]) { id } }'


def document() -> dict[str, Any]:
    return {
        "organizations": [
            {
                "id": "o-promise",
                "tokens": [
                    {"name": "rw", "secret": RW, "permissions": ["read", "write"]},
                    {"name": "spare", "secret": SPARE, "permissions": ["read", "write"]},
                    {"name": "doomed", "secret": DOOMED, "permissions": ["read", "write"]},
                ],
                "applications": [
                    {"app_key": APP_KEY, "app_secret": APP_SECRET, "policies": ["asset:read", "asset:write"]}
                ],
                "products": [{"id": "pp1", "devices": [{"id": "dev1", "secret": "dev1-secret"}]}],
                "assets": [
                    {
                        "id": "a-one",
                        "name": "One",
                        "content": [{"path": "files/enos-raced.bin", "enos_category": "feature"}],
                    }
                ],
            },
            {
                "id": "o-promise-other",
                "tokens": [{"name": "rw", "secret": OTHER, "permissions": ["read", "write"]}],
                "assets": [{"id": "a-other", "name": "Other"}],
            },
        ]
    }


ENOS_FILES = {"files/enos-raced.bin": os.urandom(50 * 1024)}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # the feed is read often, so that it reads between concurrent writers' commits
    env = {"ASSETFILES_EVENTS_POLL_SECONDS": "0.01"}
    running = seed_and_start(tmp_path_factory.mktemp("promises"), document(), ENOS_FILES, env)
    yield running
    running.stop()


def upload(
    server: Server,
    name: str,
    data: bytes,
    *,
    token: str = RW,
    asset: str = "a-one",
    tags: dict[str, str] | None = None,
) -> str:
    ticket = server.data(
        "mutation($i: ContentUploadInput!) { createContentUpload(input: $i) { id uploadUrl } }",
        {"i": {"name": name, "length": len(data), "sha256": sha256(data),
               "associations": [{"type": "asset", "id": asset}],
               "tags": [{"name": key, "value": value} for key, value in (tags or {}).items()]}},
        token=token,
    )["createContentUpload"]  # fmt: skip
    response = httpx.put(ticket["uploadUrl"], content=data, timeout=30)
    assert response.status_code == 201, response.text
    content_id: str = ticket["id"]
    return content_id


def usage(server: Server, token: str = RW) -> tuple[int, int]:
    found = server.data(USAGE, token=token)["organizationUsage"]
    return found["storedBytes"], found["contentCount"]


def at_once(count: int, call: Callable[[int], Any]) -> list[Any]:
    """``call(i)`` for i in range(count), all released together from their own threads."""
    barrier = threading.Barrier(count)

    def run(index: int) -> Any:
        barrier.wait()
        return call(index)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


class EventReader:
    """Reads one event stream on a thread until stopped, then closes it (an open stream polls the
    catalog as often as the server's poll interval says, so none is left open)."""

    def __init__(self, server: Server, token: str, last_event_id: str | None = None) -> None:
        headers = {"Authorization": f"Automation {token}"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        self.client = httpx.Client(timeout=httpx.Timeout(30, read=None))
        self.response = self.client.send(
            self.client.build_request("GET", f"{server.base_url}/api/events", headers=headers), stream=True
        )
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.ended = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for event in server_sent_events(self.response.iter_lines()):
                if event["event"] == "content":
                    self.events.put({**event, "data": json.loads(event["data"])})
        except (httpx.HTTPError, RuntimeError):
            pass  # closed by stop()
        finally:
            self.ended.set()

    def take(self, count: int, quiet: float) -> list[dict[str, Any]]:
        """Up to ``count`` events, giving up once none came for ``quiet`` seconds."""
        taken: list[dict[str, Any]] = []
        with contextlib.suppress(queue.Empty):
            while len(taken) < count:
                taken.append(self.events.get(timeout=quiet))
        return taken

    def stop(self) -> None:
        self.response.close()
        self.client.close()


def replay(server: Server, token: str, after: str = "0") -> list[dict[str, Any]]:
    """Every change the feed holds after ``after``."""
    reader = EventReader(server, token, after)
    try:
        return reader.take(100_000, quiet=2)
    finally:
        reader.stop()


# -- usage and the feed under concurrent deletes ---------------------------------------------


def test_concurrent_deletes_of_one_content_charge_its_size_back_once(server: Server) -> None:
    before = usage(server)
    content_id = upload(server, "raced.bin", os.urandom(100 * 1024))
    assert usage(server) == (before[0] + 100 * 1024, before[1] + 1)

    def delete(_: int) -> int:
        return server.gql(DELETE, {"i": content_id}, token=RW).status_code

    assert set(at_once(30, delete)) == {200}
    assert usage(server) == before  # once, not once per racing delete
    deleted = [
        event
        for event in replay(server, RW)
        if event["data"]["id"] == content_id and event["data"]["change"] == "deleted"
    ]
    assert len(deleted) == 1


def test_enos_and_graphql_deletes_racing_for_one_content_charge_it_once(server: Server) -> None:
    query = """{ assetContents(filters: {association: {type: "asset", id: "a-one"}, name: "enos-raced.bin"})
                 { assetContents { id enos { fileUri } } } }"""
    (found,) = server.data(query, token=RW)["assetContents"]["assetContents"]
    before = usage(server)
    token = token_request(server, APP_KEY, APP_SECRET).json()["data"]["accessToken"]
    enos_delete = {"action": "delete", "orgId": "o-promise", "fileUri": found["enos"]["fileUri"],
                   "category": "feature", "assetId": "a-one"}  # fmt: skip

    def delete(index: int) -> int:
        if index % 2:
            url = f"{server.base_url}/connect-service/v2.1/files"
            return httpx.post(
                url, params=enos_delete, headers={"apim-accesstoken": token}, timeout=30
            ).status_code
        return server.gql(DELETE, {"i": found["id"]}, token=RW).status_code

    statuses = at_once(30, delete)
    assert set(statuses) <= {200, 404}, statuses  # EnOS says 404 to the deletes that came second
    assert usage(server) == (before[0] - 50 * 1024, before[1] - 1)
    changes = [event for event in replay(server, RW) if event["data"]["id"] == found["id"]]
    assert [event["data"]["change"] for event in changes] == ["created", "deleted"]  # created by apply


# -- the event feed -------------------------------------------------------------------------


def test_a_live_stream_sees_every_change_that_concurrent_writers_commit(server: Server) -> None:
    writers, rounds = 24, 15
    contents = [upload(server, f"feed-{index}.txt", f"feed {index}".encode()) for index in range(writers)]
    reader = EventReader(server, RW)
    time.sleep(0.5)  # the stream has read the newest id before the writes below

    def write(index: int) -> None:
        for value in range(rounds):
            assert server.gql(SET_TAGS, {"i": contents[index], "v": str(value)}, token=RW).status_code == 200

    try:
        at_once(writers, write)
        expected = writers * rounds
        live_ids = [event["id"] for event in reader.take(expected, quiet=10)]
    finally:
        reader.stop()
    assert len(live_ids) == expected, f"the live stream missed {expected - len(live_ids)} committed changes"
    replayed = [event["id"] for event in replay(server, RW, live_ids[0])]
    assert live_ids[1:] == replayed[: expected - 1]
    assert [int(i) for i in live_ids] == sorted(int(i) for i in live_ids)


def test_event_ids_are_numbered_per_organization(server: Server) -> None:
    first = upload(server, "own-1.txt", b"one", token=OTHER, asset="a-other")
    for index in range(5):  # another organization's changes in between
        upload(server, f"busy-{index}.txt", b"x")
    second = upload(server, "own-2.txt", b"two", token=OTHER, asset="a-other")
    ids = {event["data"]["id"]: int(event["id"]) for event in replay(server, OTHER)}
    assert ids[second] == ids[first] + 1  # nothing of o-promise's five shows in its ids


def test_a_stream_ends_once_its_token_is_revoked(server: Server) -> None:
    stream = EventReader(server, DOOMED)
    assert stream.response.status_code == 200
    revoked = run_cli(
        "token", "revoke", "--org", "o-promise", "--name", "doomed", "--data-dir", str(server.data_dir)
    )
    assert revoked.returncode == 0, revoked.stderr
    assert stream.ended.wait(30), "the stream kept going after its token was revoked"
    again = httpx.get(f"{server.base_url}/api/events", headers={"Authorization": f"Automation {DOOMED}"})
    assert again.status_code == 401


def test_a_last_event_id_of_unicode_digits_is_a_bad_request(server: Server) -> None:
    headers = {b"Authorization": f"Automation {RW}".encode(), b"Last-Event-ID": "\u00b2".encode("latin-1")}
    answer = httpx.get(f"{server.base_url}/api/events", headers=headers)
    assert answer.status_code == 400
    assert answer.json()["error"]["field"] == "Last-Event-ID"


# -- revocation of upload URLs --------------------------------------------------------------


def test_an_upload_url_stores_nothing_once_its_token_is_revoked(server: Server, tmp_path: Path) -> None:
    data = b"minted before the revocation"
    ticket = server.data(
        "mutation($i: ContentUploadInput!) { createContentUpload(input: $i) { id uploadUrl } }",
        {"i": {"name": "late.txt", "length": len(data), "sha256": sha256(data),
               "associations": [{"type": "asset", "id": "a-one"}]}},
        token=SPARE,
    )["createContentUpload"]  # fmt: skip
    before = usage(server)
    revoked = run_cli(
        "token", "revoke", "--org", "o-promise", "--name", "spare", "--data-dir", str(server.data_dir)
    )
    assert revoked.returncode == 0, revoked.stderr
    refused = httpx.put(ticket["uploadUrl"], content=data)
    assert refused.status_code == 403
    assert "revoked or has expired" in refused.json()["error"]["message"]
    assert usage(server) == before
    assert (
        server.gql("query($i: ID!) { content(id: $i) { id } }", {"i": ticket["id"]}, token=RW).json()["data"][
            "content"
        ]
        is None
    )


# -- the EnOS token service's body ------------------------------------------------------------


def test_a_token_request_whose_body_stalls_gets_408(tmp_path: Path) -> None:
    """On a server of its own with a 1 s body timeout: the shared one keeps the default, so that
    its concurrent tests never meet the bound on a loaded machine."""
    stalling = start_server(tmp_path / "data", {"ASSETFILES_BODY_IDLE_TIMEOUT_SECONDS": "1"})
    try:
        host, port = stalling.base_url.removeprefix("http://").split(":")
        for path in ("/apim-token-service/v2.0/token/get", "/apim-token-service/v2.0/token/refresh"):
            with socket.create_connection((host, int(port)), timeout=30) as connection:
                connection.sendall(
                    f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    "Content-Length: 1000\r\n\r\n{".encode()
                )
                answer = connection.recv(65536).decode()
            assert answer.startswith("HTTP/1.1 408"), answer
            body = json.loads(answer.split("\r\n\r\n", 1)[1])
            assert body["status"] == 408 and "body" in body["msg"]
    finally:
        stalling.stop()


def test_a_token_request_still_works(server: Server) -> None:
    answer = token_request(server, APP_KEY, APP_SECRET)
    assert answer.status_code == 200 and answer.json()["status"] == 0, answer.text


# -- metrics labels ------------------------------------------------------------------------------


def test_made_up_methods_do_not_become_metric_labels(server: Server) -> None:
    for index in range(40):
        httpx.request(f"MADEUP{index}", f"{server.base_url}/healthz")
    metrics = httpx.get(f"{server.base_url}/metrics").text
    assert "MADEUP" not in metrics
    assert 'method="OTHER"' in metrics


# -- failed sign-ins sent at once -------------------------------------------------------------


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[Server]:
    env = {"ASSETFILES_RATE_LIMIT_AUTH_FAILURES": "5/minute", "ASSETFILES_MAX_REQUESTS_PER_ADDRESS": "0"}
    running = seed_and_start(tmp_path, document(), ENOS_FILES, env)
    yield running
    running.stop()


def test_bad_tokens_sent_at_once_get_no_more_checks_than_the_limit(limited: Server) -> None:
    statuses = at_once(
        60,
        lambda i: limited.gql("{ currentToken { name } }", token=f"tok-bad-{i:04d}-0123456789").status_code,
    )
    assert statuses.count(401) == 5, statuses
    assert statuses.count(429) == 55


def test_wrong_device_secrets_sent_at_once_get_no_more_scrypts_than_the_limit(limited: Server) -> None:
    def put(index: int) -> int:
        return httpx.put(
            f"{limited.base_url}/api/devices/pp1/dev1/content?name=x.txt",
            content=b"x",
            headers={"Authorization": f"Device wrong-{index}"},
            timeout=60,
        ).status_code

    statuses = at_once(40, put)
    assert statuses.count(401) == 5, statuses
    assert statuses.count(429) == 35


def test_a_locked_out_address_keeps_what_needs_no_guessing(limited: Server) -> None:
    content_id = upload(limited, "shared.txt", b"shared address")
    url = limited.data("query($i: ID!) { content(id: $i) { url } }", {"i": content_id}, token=RW)["content"][
        "url"
    ]
    for index in range(5):
        assert (
            limited.gql("{ currentToken { name } }", token=f"tok-guess-{index}-0123456789").status_code == 401
        )
    # an unknown credential from here waits for the window
    assert limited.gql("{ currentToken { name } }", token=OTHER).status_code == 429
    # RW signed in from here within the window: it keeps working
    assert limited.gql("{ currentToken { name } }", token=RW).status_code == 200
    # requests that carry no credential are not sign-ins
    assert httpx.get(url).content == b"shared address"
    assert httpx.get(f"{limited.base_url}/healthz").status_code == 200


# -- usage when apply replaces bytes ---------------------------------------------------------


def test_apply_replacing_a_contents_bytes_charges_the_difference(tmp_path: Path) -> None:
    fixture = tmp_path / "fixture.yaml"
    (tmp_path / "files").mkdir()
    doc = {
        "organizations": [
            {"id": "o-apply", "assets": [{"id": "a-1", "name": "A", "content": [{"path": "files/f.bin"}]}]}
        ]
    }
    fixture.write_text(yaml.safe_dump(doc))
    data_dir = tmp_path / "data"

    def apply_with(size: int) -> dict[str, Any]:
        (tmp_path / "files" / "f.bin").write_bytes(os.urandom(size))
        applied = run_cli("apply", str(fixture), "--data-dir", str(data_dir))
        assert applied.returncode == 0, applied.stderr
        shown = run_cli("usage", "--org", "o-apply", "--json", "--data-dir", str(data_dir))
        found: dict[str, Any] = json.loads(shown.stdout)
        return found

    assert apply_with(1000)["storedBytes"] == 1000
    assert apply_with(3000)["storedBytes"] == 3000
    shrunk = apply_with(500)
    assert (shrunk["storedBytes"], shrunk["contentCount"]) == (500, 1)


# -- numbers out of the catalog's range -----------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--max-total-bytes", str(2**63)], "--max-total-bytes"),
        (["--max-file-bytes", str(10**30)], "--max-file-bytes"),
    ],
)
def test_quota_numbers_beyond_the_catalog_are_usage_errors(
    tmp_path: Path, args: list[str], fragment: str
) -> None:
    result = run_cli("quota", "set", "--org", "o-x", *args, "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 2
    assert fragment in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("organization", "field_name"),
    [
        ({"quota": {"max_total_bytes": 2**63}}, "max_total_bytes"),
        ({"retention": [{"delete_after_days": 10**30}]}, "delete_after_days"),
        ({"retention": [{"keep_per_asset": 2**40}]}, "keep_per_asset"),
        ({"retention": [{"delete_after_days": True}]}, "delete_after_days"),
        ({"quota": {"max_file_bytes": True}}, "max_file_bytes"),
    ],
)
def test_fixture_numbers_beyond_the_catalog_or_not_numbers_are_refused(
    tmp_path: Path, organization: dict[str, Any], field_name: str
) -> None:
    fixture = tmp_path / "fixture.yaml"
    fixture.write_text(yaml.safe_dump({"organizations": [{"id": "o-bounds", **organization}]}))
    result = run_cli("apply", str(fixture), "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert field_name in result.stderr and "Traceback" not in result.stderr


# -- worker processes ------------------------------------------------------------------------------


def _workers(main: int) -> set[int]:
    return set(descendants(main)) - {main}


def _two_workers_server(tmp_path: Path) -> tuple[BackgroundServer, int, set[int]]:
    """A started server with two workers: it, its main process and its workers once both run."""
    data_dir = tmp_path / "data"
    env = {"ASSETFILES_SECRET_KEY": SECRET_KEY, **backend_env(data_dir)}
    running = BackgroundServer(data_dir, env=env, workers=2, log=tmp_path / "server.log").start()
    assert running.process is not None
    main = running.process.pid
    deadline = time.monotonic() + 30
    while len(workers := _workers(main)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(workers) == 2, workers
    return running, main, workers


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads worker processes from /proc")
def test_a_killed_worker_is_replaced_and_the_server_keeps_answering(tmp_path: Path) -> None:
    running, main, workers = _two_workers_server(tmp_path)
    try:
        assert running.process is not None
        deadline = time.monotonic() + 30
        victim = sorted(workers)[0]
        os.kill(victim, signal.SIGKILL)
        answered = 0
        while time.monotonic() < deadline and answered < 20:
            try:
                answered += httpx.get(f"{running.base_url}/healthz", timeout=5).status_code == 200
            except httpx.HTTPError:
                time.sleep(0.2)
        assert answered == 20
        while (len(now := _workers(main)) < 2 or victim in now) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert running.process.poll() is None, "the main process exited"
        assert len(now) == 2 and victim not in now, now
    finally:
        running.stop()


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads worker processes from /proc")
def test_stopping_a_background_server_leaves_none_of_its_workers(tmp_path: Path) -> None:
    """Even when the main process died first and could not stop them (the demo, tests and
    benchmarks start servers this way; a stray worker would keep the port and the catalog)."""
    running, main, workers = _two_workers_server(tmp_path)
    os.kill(main, signal.SIGKILL)
    running.stop()
    deadline = time.monotonic() + 10
    while (alive := {pid for pid in workers if _running(pid)}) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive


def _running(pid: int) -> bool:
    """Alive and not a zombie (an exited child not yet reaped still has a /proc entry)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status


# -- readiness when the catalog hangs (PostgreSQL) ---------------------------------------------------


@pytest.mark.skipif(
    os.environ.get("ASSETFILES_TEST_BACKEND") != "postgres", reason="locks a PostgreSQL table"
)
def test_readiness_answers_and_others_are_served_while_the_catalog_is_locked(server: Server) -> None:
    import sqlalchemy

    engine = sqlalchemy.create_engine(normalize_url(catalog_url(server.data_dir)))
    with engine.connect() as conn:
        conn.exec_driver_sql("LOCK TABLE alembic_version IN ACCESS EXCLUSIVE MODE")
        probes = at_once(60, lambda _: httpx.get(f"{server.base_url}/readyz", timeout=30))
        assert {probe.status_code for probe in probes} == {503}
        assert all("does not answer" in probe.json()["checks"]["catalog"] for probe in probes)
        assert server.gql("{ currentToken { name } }", token=OTHER).status_code == 200
        conn.rollback()
    engine.dispose()
    deadline = time.monotonic() + 30
    while httpx.get(f"{server.base_url}/readyz", timeout=30).status_code != 200:
        assert time.monotonic() < deadline, "readiness did not come back once the lock was released"
        time.sleep(0.5)


# -- the cost of filtered listings -------------------------------------------------------------------


def _aliased_filtered_listings(count: int) -> str:
    fields = " ".join(
        f"l{index}: assetContents(filters: $f, pagination: {{limit: 1}}) {{ totalCount }}"
        for index in range(count)
    )
    return "query($f: ContentFilters) { " + fields + " }"


def _tagged(tags: int, **more: Any) -> dict[str, Any]:
    """A name glob and ``tags`` tag filters: every row under the targets is read, tag by tag."""
    return {"f": {"name": "*N*", "tags": [{"name": f"t{index}"} for index in range(tags)], **more}}


def _many_contents(data_dir: Path, org_id: str, asset_id: str, count: int) -> None:
    """``count`` contents straight into the catalog (listings need rows, not bytes)."""
    import asyncio
    import uuid

    from assetfiles.model import Association, Content, Creator, CreatorKind
    from assetfiles.store.contents import ContentStore
    from assetfiles.store.database import create_engine

    async def insert() -> None:
        catalog = ContentStore(create_engine(catalog_url(data_dir)))
        now = int(time.time() * 1000)
        digest = sha256(b"listed")
        batch = [
            Content(
                id=str(uuid.uuid4()), org_id=org_id, name=f"bulk-{index:05d}.txt", content_type="text/plain",
                type="file", length=6, sha256=digest, md5=digest[:32], creator=Creator(CreatorKind.USER, "b"),
                created_at=now, updated_at=now, tags={}, associations=(Association("asset", asset_id),),
            )
            for index in range(count)
        ]  # fmt: skip
        await catalog.insert_contents(batch)
        catalog.engine.dispose()

    asyncio.run(insert())


def test_filtered_listings_cost_what_they_make_the_catalog_read(tmp_path: Path) -> None:
    big = {
        "id": "o-big",
        "tokens": [{"name": "rw", "secret": RW, "permissions": ["read", "write"]}],
        "assets": [
            {"id": "a-big", "name": "Big"},
            {"id": "a-tiny", "name": "Tiny", "content": [{"path": "files/tiny.txt"}]},
        ],
    }
    small = {
        "id": "o-small",
        "tokens": [{"name": "rw", "secret": OTHER, "permissions": ["read", "write"]}],
        "assets": [{"id": "a-small", "name": "Small", "content": [{"path": "files/tiny.txt"}]}],
    }
    fixture = write_fixture(tmp_path, {"organizations": [big, small]}, {"files/tiny.txt": b"tiny"})
    data_dir = tmp_path / "data"
    applied = run_cli("apply", str(fixture), "--data-dir", str(data_dir))
    assert applied.returncode == 0, applied.stderr
    _many_contents(data_dir, "o-big", "a-big", 20_000)
    running = start_server(data_dir)
    try:
        heavy = _aliased_filtered_listings(10)  # 10 x 10 tag filters: 20,000 of cost before any row
        refused = running.gql(heavy, _tagged(10), token=RW)
        assert refused.status_code == 400
        message = refused.json()["errors"][0]["message"]
        assert "costs more than 60000" in message and "read up to 2200110 rows" in message  # 10 x 11 x 20,001
        # the same query where it reads little is answered: in a small organization, and in the
        # large one when it lists a small asset
        assert running.data(heavy, _tagged(10), token=OTHER)["l0"]["totalCount"] == 0
        on_tiny = _tagged(10, association={"type": "asset", "id": "a-tiny"})
        assert running.data(heavy, on_tiny, token=RW)["l0"]["totalCount"] == 0
        # tag filters cost their planning whatever the rows: 200 listings of 50 are refused anywhere
        planned = running.gql(_aliased_filtered_listings(200), _tagged(50), token=OTHER)
        assert planned.status_code == 400 and "each tag filter of a listing 200" in planned.text
    finally:
        running.stop()


# -- a flood of stalled token requests ---------------------------------------------------------------


@pytest.mark.slow
def test_stalled_token_requests_from_several_addresses_leave_health_answering(tmp_path: Path) -> None:
    """1,100 token requests that stall after one byte of their body, from five loopback addresses
    (each under its 256 in-flight cap): a sixth address still gets /healthz, and they all end."""
    env = {"ASSETFILES_BODY_IDLE_TIMEOUT_SECONDS": "20"}
    running = seed_and_start(tmp_path, document(), ENOS_FILES, env)
    host, port = running.base_url.removeprefix("http://").split(":")
    held: list[socket.socket] = []
    try:
        for index in range(1100):
            connection = socket.create_connection(
                (host, int(port)), timeout=30, source_address=(f"127.0.0.{2 + index % 5}", 0)
            )
            connection.sendall(
                b"POST /apim-token-service/v2.0/token/get HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
            )
            held.append(connection)
        time.sleep(1)  # every request is being served (its body awaited), none has timed out
        with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.7"), timeout=10) as client:
            assert client.get(f"{running.base_url}/healthz").status_code == 200
        answers = [connection.recv(200) for connection in held[:50]]
        assert all(answer.startswith(b"HTTP/1.1 408") for answer in answers), answers[:3]
    finally:
        for connection in held:
            connection.close()
        running.stop()
