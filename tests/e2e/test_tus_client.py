"""Resumable uploads from our own clients over real sockets: ``assetfiles upload`` and
``Client.upload`` through tus, across connections a proxy cuts, a client process killed mid-file,
a server crash mid-PATCH, and a server without tus (today's path)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from assetfiles.client import Client
from assetfiles.client.retry import RetryPolicy
from tests.cutproxy import CutProxy
from tests.faultproxy import Fault, FaultProxy
from tests.helpers import Server, kill_server, seed_and_start, sha256, start_server
from tests.tus import AUTH, PATCH, TOKEN, content, document, metadata

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = seed_and_start(tmp_path_factory.mktemp("tus-client"), document(), {})
    yield running
    running.stop()


def _file(directory: Path, name: str, size: int, seed: int) -> Path:
    path = directory / name
    path.write_bytes(random.Random(seed).randbytes(size))
    return path


def _cli(*args: str, state: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "ASSETFILES_STATE_DIR": str(state), "ASSETFILES_TOKEN": TOKEN}
    command = [sys.executable, "-m", "assetfiles", "upload", *args]
    return subprocess.Popen(command, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _json_lines(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_the_cli_uploads_through_tus_with_json_lines(server: Server, tmp_path: Path) -> None:
    files = [_file(tmp_path, "big.bin", 3 * MIB + 17, 1), _file(tmp_path, "small.csv", 2000, 2)]
    run = _cli("--url", server.base_url, "--asset", "a1", "--json", "--chunk-size", str(MIB),
               "--tag", "site=north", *map(str, files), state=tmp_path / "state")  # fmt: skip
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    lines = _json_lines(out)
    assert [line["event"] for line in lines] == ["uploaded", "uploaded", "summary"]
    for path, line in zip(files, lines, strict=False):
        found = content(server, str(line["content"]))
        assert found["sha256"] == sha256(path.read_bytes()) and found["uploadedVia"] == "tus"
    assert not list((tmp_path / "state" / "uploads").glob("*.json"))  # nothing left to resume


def test_the_cli_refuses_a_read_only_token_with_exit_2(server: Server, tmp_path: Path) -> None:
    path = _file(tmp_path, "x.bin", 10, 3)
    run = _cli("--url", server.base_url, "--asset", "a1", "--token", "tok-tus-ro-0123456789", str(path),
               state=tmp_path / "state")  # fmt: skip
    _, err = run.communicate(timeout=60)
    assert run.returncode == 2 and "refused the token" in err


def _offset_once_unlocked(url: str) -> int:
    """The upload's offset, once the server has noticed the killed client's PATCH (423 until then)."""
    deadline = time.monotonic() + 30
    while (head := httpx.head(url, headers=AUTH)).status_code == 423 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert head.status_code == 200, head
    return int(head.headers["upload-offset"])


def test_a_killed_upload_resumes_from_the_servers_offset(server: Server, tmp_path: Path) -> None:
    size = 24 * MIB
    path = _file(tmp_path, "clip.mp4", size, 4)
    state = tmp_path / "state"
    with CutProxy(_port(server), rate=6 * MIB) as slow:
        first = _cli(
            "--url", slow.base_url, "--asset", "a1", "--chunk-size", str(MIB), str(path), state=state
        )
        deadline = time.monotonic() + 60
        # each chunk is acknowledged before the next is sent, so 6 MiB through the proxy means the
        # server holds at least 5 MiB; the kill comes long before the other 18 MiB could pass
        while slow.sent < 6 * MIB and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        location = json.loads(next((state / "uploads").glob("*.json")).read_text())["location"]
        offset = _offset_once_unlocked(location.replace(slow.base_url, server.base_url))
        assert 4 * MIB <= offset < size
        before = slow.sent
    with CutProxy(_port(server), port=slow.port) as counting:  # the same URL as the killed run
        second = _cli("--url", counting.base_url, "--asset", "a1", "--chunk-size", str(MIB), "--json",
                      str(path),
                      state=state)  # fmt: skip
        out, err = second.communicate(timeout=120)
        assert second.returncode == 0, out + err
        resent = counting.sent
    assert before > 0 and resent < size - offset + 2 * MIB  # only the rest went again (plus headers)
    (line, _) = _json_lines(out)
    assert content(server, str(line["content"]))["sha256"] == sha256(path.read_bytes())


def test_the_library_uploads_across_connections_a_proxy_cuts(server: Server, tmp_path: Path) -> None:
    size = 20 * MIB
    path = _file(tmp_path, "firmware.img", size, 5)
    # the first 3 connections are cut 12 MiB in: mid-chunk (the client sends 8 MiB per PATCH)
    with CutProxy(_port(server), cut_after=12 * MIB, cuts=3) as proxy:

        async def upload() -> str | None:
            retry = RetryPolicy(attempts=20, backoff_base=0.01, backoff_max=0.05)
            async with Client(proxy.base_url, TOKEN, retry=retry) as client:
                result = await client.upload("a1", path)
                assert result.error is None, result.error
                return result.content_id

        os.environ["ASSETFILES_STATE_DIR"] = str(tmp_path / "state")
        try:
            content_id = asyncio.run(upload())
        finally:
            del os.environ["ASSETFILES_STATE_DIR"]
        assert proxy.cut >= 2  # every connection that carried 12 MiB was cut
    found = content(server, str(content_id))
    assert found["sha256"] == sha256(path.read_bytes()) and found["uploadedVia"] == "tus"
    # each cut cost at most the chunk it interrupted (checksummed chunks are all or nothing),
    # never the chunks the server had acknowledged
    assert proxy.sent < size + proxy.cut * 8 * MIB


def test_a_server_without_tus_gets_todays_upload(server: Server, tmp_path: Path) -> None:
    path = _file(tmp_path, "plain.bin", 100_000, 6)

    def no_tus(method: str, request_path: str, count: int) -> Fault:
        return Fault.ERROR_500 if request_path.startswith("/files") else Fault.PASS

    proxy = FaultProxy(server.base_url, no_tus).start()
    try:
        run = _cli("--url", proxy.base_url, "--asset", "a1", "--json", str(path), state=tmp_path / "state")
        out, err = run.communicate(timeout=60)
    finally:
        proxy.stop()
    assert run.returncode == 0, err
    (line, _) = _json_lines(out)
    assert content(server, str(line["content"]))["uploadedVia"] == "graphql"


@pytest.mark.slow  # waits out the dead request's lease (10 s)
def test_a_server_crash_mid_patch_keeps_the_acknowledged_offset(tmp_path: Path) -> None:
    (tmp_path / "crash").mkdir()
    running = seed_and_start(tmp_path / "crash", document(), {})
    data = random.Random(7).randbytes(4 * MIB)
    created = httpx.post(f"{running.base_url}/files/", headers={
        **AUTH, "Upload-Length": str(len(data)),
        "Upload-Metadata": metadata(filename="c.bin", asset="a1")})  # fmt: skip
    path = created.headers["location"].removeprefix(running.base_url)
    assert (
        httpx.patch(
            running.base_url + path, content=data[:MIB], headers={**PATCH, "Upload-Offset": "0"}
        ).status_code
        == 204
    )

    def endless() -> Iterator[bytes]:
        yield data[MIB : 2 * MIB]
        time.sleep(30)  # the server dies while this body is open
        yield b""

    with CutProxy(_port(running)) as proxy:
        headers = {**PATCH, "Upload-Offset": str(MIB)}
        dying = functools.partial(
            httpx.patch, proxy.base_url + path, content=endless(), headers=headers, timeout=60
        )
        thread = threading.Thread(target=_quiet, args=(dying,), daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while proxy.sent < MIB and time.monotonic() < deadline:
            time.sleep(0.02)
        kill_server(running)
    restarted = start_server(running.data_dir)
    try:
        url = restarted.base_url + path
        head = httpx.head(url, headers=AUTH)
        deadline = time.monotonic() + 60
        while head.status_code == 423 and time.monotonic() < deadline:  # the dead process's lease runs out
            head = httpx.head(url, headers=AUTH)
        offset = int(head.headers["upload-offset"])
        assert offset == MIB  # acknowledged; the unacknowledged megabyte is not half a content
        done = httpx.patch(url, content=data[offset:], headers={**PATCH, "Upload-Offset": str(offset)})
        assert done.status_code == 204
        assert content(restarted, done.headers["upload-content-id"])["sha256"] == sha256(data)
    finally:
        restarted.stop()


def _port(server: Server) -> int:
    return int(server.base_url.rsplit(":", 1)[1])


def _quiet(call: Callable[[], object]) -> None:
    """Run a request whose connection the test breaks: its failure is expected."""
    with contextlib.suppress(httpx.HTTPError):
        call()
