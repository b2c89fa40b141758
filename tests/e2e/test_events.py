"""``GET /api/events``: content changes as server-sent events, resumable, isolated and bounded."""

from __future__ import annotations

import json
import queue
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_sync import OTHER_TOKEN, TOKEN, delete, upload
from tests.helpers import Server, seed_and_start, server_sent_events

SET_TAGS = 'mutation($i: ID!) { setContentTags(id: $i, tags: [{name: "k", value: "v"}]) { id } }'


def document() -> dict[str, Any]:
    return {
        "organizations": [
            {"id": "o-sync", "tokens": [{"name": "rw", "secret": TOKEN, "permissions": ["read", "write"]}],
             "assets": [{"id": "a-mirror", "name": "Mirror"}]},
            {"id": "o-sync-other", "tokens": [{"name": "ro", "secret": OTHER_TOKEN, "permissions": ["read"]}],
             "assets": [{"id": "a-foreign", "name": "Foreign"}]},
        ]
    }  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"ASSETFILES_EVENTS_POLL_SECONDS": "0.1", "ASSETFILES_EVENTS_MAX_STREAMS_PER_ORG": "3",
           "ASSETFILES_EVENTS_STREAM_SECONDS": "20"}  # fmt: skip
    running = seed_and_start(tmp_path_factory.mktemp("events"), document(), {}, env)
    yield running
    running.stop()


@dataclass
class Stream:
    """Reads one event stream on a thread; events arrive on a queue as dicts (event, id, data)."""

    url: str
    token: str
    last_event_id: str | None = None
    events: queue.Queue[dict[str, Any]] = field(default_factory=queue.Queue)
    status: int | None = None
    opened: threading.Event = field(default_factory=threading.Event)
    ended: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Stream:
        threading.Thread(target=self._run, daemon=True).start()
        assert self.opened.wait(10)
        return self

    def _run(self) -> None:
        headers = {"Authorization": f"Automation {self.token}"}
        if self.last_event_id is not None:
            headers["Last-Event-ID"] = self.last_event_id
        try:
            with httpx.stream("GET", f"{self.url}/api/events", headers=headers, timeout=30) as response:
                self.status = response.status_code
                self.opened.set()
                for event in server_sent_events(response.iter_lines()):
                    self.events.put(event)
        except httpx.HTTPError:
            pass
        finally:
            self.opened.set()
            self.ended.set()

    def next(self, timeout: float = 10) -> dict[str, Any]:
        event = self.events.get(timeout=timeout)
        if "data" in event:
            event["data"] = json.loads(event["data"])
        return event


def test_created_updated_deleted_arrive_in_order_and_resume(server: Server) -> None:
    stream = Stream(server.base_url, TOKEN).start()
    assert stream.status == 200
    time.sleep(0.3)  # the stream has read the newest id before the changes below
    content_id = upload(server, "a-mirror", "watched.txt", b"one")
    server.data(SET_TAGS, {"i": content_id}, token=TOKEN)
    delete(server, content_id)
    created, updated, deleted = stream.next(), stream.next(), stream.next()
    assert [event["event"] for event in (created, updated, deleted)] == ["content"] * 3
    assert [event["data"]["change"] for event in (created, updated, deleted)] == [
        "created",
        "updated",
        "deleted",
    ]
    assert {event["data"]["id"] for event in (created, updated, deleted)} == {content_id}
    assert created["data"]["associations"] == [{"type": "asset", "id": "a-mirror"}]
    assert deleted["data"]["associations"] == [{"type": "asset", "id": "a-mirror"}]
    assert int(created["id"]) < int(updated["id"]) < int(deleted["id"])
    # a reconnect from the first id replays what came after it, and only that
    resumed = Stream(server.base_url, TOKEN, last_event_id=created["id"]).start()
    assert [resumed.next()["id"], resumed.next()["id"]] == [updated["id"], deleted["id"]]


def test_another_organization_sees_nothing(server: Server) -> None:
    other = Stream(server.base_url, OTHER_TOKEN, last_event_id="0").start()
    assert other.status == 200
    upload(server, "a-mirror", "private.txt", b"secret")
    with pytest.raises(queue.Empty):
        other.next(timeout=1.5)


def test_an_id_the_feed_does_not_cover_gets_a_reset(server: Server) -> None:
    stream = Stream(server.base_url, TOKEN, last_event_id=str(10**15)).start()
    assert stream.next()["event"] == "reset"


@pytest.mark.parametrize(
    ("headers", "status", "field_name", "fragment"),
    [
        ({}, 401, None, "Authorization"),
        ({"Authorization": "Automation tok-nope-0123456789"}, 401, None, "token"),
        ({"Authorization": f"Automation {TOKEN}", "Last-Event-ID": "abc"}, 400, "Last-Event-ID", "'abc'"),
        ({"Authorization": f"Automation {TOKEN}", "Last-Event-ID": "9" * 40}, 400, "Last-Event-ID", "digits"),
        ({"Authorization": f"Automation {TOKEN}", "Last-Event-ID": "-1"}, 400, "Last-Event-ID", "'-1'"),
    ],
)
def test_bad_requests_are_refused_in_the_rest_dialect(
    server: Server, headers: dict[str, str], status: int, field_name: str | None, fragment: str
) -> None:
    response = httpx.get(f"{server.base_url}/api/events", headers=headers, timeout=10)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error.get("field") == field_name and error["requestId"]
    assert fragment in error["message"], error


def test_streams_are_bounded_per_organization_end_after_their_lifetime_and_give_their_slot_back(
    tmp_path: Path,
) -> None:
    env = {"ASSETFILES_EVENTS_STREAM_SECONDS": "8", "ASSETFILES_EVENTS_MAX_STREAMS_PER_ORG": "2",
           "ASSETFILES_EVENTS_POLL_SECONDS": "0.1"}  # fmt: skip
    running = seed_and_start(tmp_path, document(), {}, env)
    try:
        streams = [Stream(running.base_url, TOKEN).start() for _ in range(2)]
        assert [stream.status for stream in streams] == [200, 200]
        headers = {"Authorization": f"Automation {TOKEN}"}
        refused = httpx.get(f"{running.base_url}/api/events", headers=headers, timeout=10)
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "30"
        assert refused.json()["error"]["code"] == "RATE_LIMITED"
        assert Stream(running.base_url, OTHER_TOKEN).start().status == 200  # not crowded out
        assert all(stream.ended.wait(40) for stream in streams)  # the server ended them
        assert Stream(running.base_url, TOKEN).start().status == 200  # and gave their slots back
    finally:
        running.stop()


def test_clients_that_hang_up_at_once_give_their_slots_back(tmp_path: Path) -> None:
    """A caller opening streams and dropping the connection before (or just after) the answer
    must not use up the organization's streams (2 here, each living an hour)."""
    env = {"ASSETFILES_EVENTS_MAX_STREAMS_PER_ORG": "2", "ASSETFILES_EVENTS_POLL_SECONDS": "0.1"}
    running = seed_and_start(tmp_path, document(), {}, env)
    host, port = running.base_url.removeprefix("http://").split(":")
    request = (f"GET /api/events HTTP/1.1\r\nHost: {host}\r\nAuthorization: Automation {TOKEN}\r\n"
               "Accept: text/event-stream\r\n\r\n").encode()  # fmt: skip
    try:
        for index in range(12):
            with socket.create_connection((host, int(port)), timeout=10) as connection:
                connection.sendall(request)
                if index % 2:
                    connection.recv(64)  # the answer has begun
        deadline = time.monotonic() + 15
        while True:
            stream = Stream(running.base_url, TOKEN).start()
            if stream.status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert stream.status == 200, "the hung-up streams kept their slots"
    finally:
        running.stop()
