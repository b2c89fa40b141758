"""``assetfiles sync --watch`` as users run it: a new, a changed and a deleted file reach the mirror,
through the event feed and by polling, and ``--exec`` runs per downloaded file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_sync import OTHER_TOKEN, TOKEN, delete, upload
from tests.helpers import Server, run_cli, seed_and_start

DEVICE_SECRET = "d1-secret-0123"


def document() -> dict[str, Any]:
    return {
        "organizations": [
            {"id": "o-sync", "tokens": [{"name": "rw", "secret": TOKEN, "permissions": ["read", "write"]}],
             "products": [{"id": "p1", "devices": [{"id": "d1", "secret": DEVICE_SECRET}]}],
             "assets": [{"id": "a-watch", "name": "Watched",
                         "signals": [{"id": "s1", "channel": "p1.d1.data_in.temp"}],
                         "content": [{"path": "files/one.txt"}, {"path": "files/two.txt"}]},
                        {"id": "a-quiet", "name": "Quiet"}]},
            {"id": "o-sync-other",
             "tokens": [{"name": "ro", "secret": OTHER_TOKEN, "permissions": ["read"]}]},
        ]
    }  # fmt: skip


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    files = {"files/one.txt": b"one\n", "files/two.txt": b"two, first version\n"}
    running = seed_and_start(tmp_path / "server", document(), files)
    yield running, tmp_path / "server" / "fixture.yaml"
    running.stop()


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def start_watch(server: Server, mirror: Path, hooks: Path, *extra: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "assetfiles", "sync", "a-watch", str(mirror), "--url", server.base_url,
               "--token", TOKEN, "--json", "--watch", "--delete",
               "--exec", f'echo "$ASSETFILES_CONTENT_ID $ASSETFILES_PATH" >> {hooks}', *extra]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stop_watch(process: subprocess.Popen[str]) -> tuple[int, list[dict[str, Any]], str]:
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    return process.returncode, [json.loads(line) for line in stdout.splitlines() if line.strip()], stderr


def exercise(
    server: Server, fixture: Path, mirror: Path, hooks: Path, process: subprocess.Popen[str]
) -> None:
    """New, changed and deleted files on the server, each awaited in the mirror."""
    folder = mirror / "a-watch"
    wait_for(lambda: (folder / "user/two.txt").exists(), "the first round")
    assert process.poll() is None, process.stderr.read() if process.stderr else ""

    new_id = upload(server, "a-watch", "new.txt", b"a new file\n")
    wait_for(lambda: (folder / "user/new.txt").exists(), "the new file")
    assert (folder / "user/new.txt").read_bytes() == b"a new file\n"
    wait_for(lambda: hooks.exists() and new_id in hooks.read_text(), "the --exec hook of the new file")
    assert f"{new_id} {(folder / 'user/new.txt').resolve()}" in hooks.read_text().splitlines()

    (fixture.parent / "files/two.txt").write_bytes(b"two, second version, longer\n")
    applied = run_cli("apply", str(fixture), "--data-dir", str(server.data_dir))
    assert applied.returncode == 0, applied.stderr
    wait_for(lambda: (folder / "user/two.txt").read_bytes() == b"two, second version, longer\n", "the change")

    delete(server, new_id)
    wait_for(lambda: not (folder / "user/new.txt").exists(), "the deletion")


def test_watch_follows_the_event_feed(world: tuple[Server, Path], tmp_path: Path) -> None:
    server, fixture = world
    hooks = tmp_path / "hooks.log"
    process = start_watch(server, tmp_path / "mirror", hooks)
    try:
        exercise(server, fixture, tmp_path / "mirror", hooks, process)
        # a device's upload is routed to the asset it feeds
        device_put = httpx.put(
            f"{server.base_url}/api/devices/p1/d1/content", params={"name": "dev.csv"}, content=b"t,v\n1,2\n",
            headers={"Authorization": f"Device {DEVICE_SECRET}"},
        )  # fmt: skip
        assert device_put.status_code == 201, device_put.text
        dev = tmp_path / "mirror/a-watch/devices/p1.d1/dev.csv"
        wait_for(dev.exists, "the device's file")
        # the hook runs after the file's round: wait for it before counting
        wait_for(lambda: hooks.read_text().rstrip().endswith(str(dev.resolve())), "the device file's hook")
        # changes elsewhere in the organization do not start rounds for this asset
        rounds_before = len(hooks.read_text().splitlines())
        upload(server, "a-quiet", "elsewhere.txt", b"x")
        time.sleep(1.5)
        assert len(hooks.read_text().splitlines()) == rounds_before
        assert not (tmp_path / "mirror/a-quiet").exists()
    finally:
        code, events, stderr = stop_watch(process)
    assert code == 0, stderr
    final = events[-1]
    assert final["event"] == "summary" and final["failed"] == 0
    assert final["downloaded"] == 5 and final["deleted"] == 1  # one, two, new, two again, dev; new deleted
    assert not any(event.get("event") == "failed" for event in events)


def test_watch_polls_a_server_without_events(world: tuple[Server, Path], tmp_path: Path) -> None:
    server, fixture = world
    hooks = tmp_path / "hooks.log"
    process = start_watch(server, tmp_path / "mirror", hooks, "--poll", "--interval", "0.3")
    try:
        exercise(server, fixture, tmp_path / "mirror", hooks, process)
    finally:
        code, events, stderr = stop_watch(process)
    assert code == 0, stderr
    assert events[-1]["downloaded"] == 4 and events[-1]["deleted"] == 1


def test_a_failing_hook_is_reported_and_the_watch_goes_on(world: tuple[Server, Path], tmp_path: Path) -> None:
    server, _ = world
    command = [sys.executable, "-m", "assetfiles", "sync", "a-watch", str(tmp_path / "m"), "--url",
               server.base_url, "--token", TOKEN, "--json", "--watch", "--exec", "exit 3"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: (tmp_path / "m/a-watch/user/two.txt").exists(), "the first round")
        time.sleep(1)
        assert process.poll() is None
    finally:
        code, events, _ = stop_watch(process)
    assert code == 1
    failed = [event for event in events if event["event"] == "failed"]
    assert len(failed) == 2 and all(event["reason"] == "--exec exited with 3" for event in failed)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--poll"], "--poll and --exec go with --watch"),
        (["--exec", "true"], "--poll and --exec go with --watch"),
        (["--watch", "--dry-run"], "do not go together"),
        (["--watch", "--interval", "0"], "--interval"),
        (["--streams", "0"], "--streams"),
        (["--streams", "33"], "--streams"),
        (["--streams-min", "1024"], "--streams-min"),
        (["--streams", "four"], "--streams"),
    ],
)
def test_watch_usage_errors(tmp_path: Path, args: list[str], fragment: str) -> None:
    result = run_cli("sync", "a-watch", str(tmp_path), "--url", "http://127.0.0.1:9", "--token", TOKEN, *args)
    assert result.returncode == 2 and fragment in result.stderr, result.stderr


def test_watch_with_a_refused_token_exits_2(world: tuple[Server, Path], tmp_path: Path) -> None:
    server, _ = world
    result = subprocess.run(
        [sys.executable, "-m", "assetfiles", "sync", "a-watch", str(tmp_path), "--url", server.base_url,
         "--token", "tok-nope-0123456789", "--watch"],
        capture_output=True, text=True, timeout=60, env={**os.environ},
    )  # fmt: skip
    assert result.returncode == 2 and "refused the token" in result.stderr
