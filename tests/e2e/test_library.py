"""The client as a library, in process against a real server over HTTP."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import assetfiles.client as library
from assetfiles.client import (
    Client,
    Event,
    Failed,
    Fatal,
    FolderBusy,
    Gone,
    Kind,
    Origin,
    RemoteFile,
    RetryPolicy,
    SyncOptions,
    Target,
    sync,
)
from assetfiles.client.lock import exclusive
from tests.e2e.test_sync import TOKEN, server, world
from tests.helpers import Server, sha256

__all__ = ["server", "world"]  # the fixtures, imported for this module


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.bytes = 0

    def event(self, event: Event) -> None:
        self.events.append(event)

    def progress(self, asset: str, path: str, delta: int) -> None:
        self.bytes += delta


def test_everything_in_all_is_importable_and_documented() -> None:
    for name in library.__all__:
        item = getattr(library, name)
        assert item.__doc__, f"{name} has no docstring"
    assert set(library.__all__) >= {"Client", "sync", "SyncOptions", "Listener", "Report", "Source", "Fatal"}


def test_listing_urls_download_and_upload(server: Server, tmp_path: Path) -> None:
    async def run() -> None:
        async with Client(server.base_url, TOKEN) as client:
            info = await client.asset("a-mirror")
            assert info.devices == ("p1.d1", "p1.d2")
            assert "a-mirror" in await client.assets()
            listing = await client.list_files("a-mirror")
            by_name = {remote.name: remote for remote in listing.files}
            assert set(by_name) == {"manual.pdf", "big.bin", "notes.txt", "d1-log.csv", "d2-log.csv"}
            assert by_name["d1-log.csv"].origin is Origin.DEVICE and by_name["d1-log.csv"].device == "p1.d1"
            urls = await client.download_urls([by_name["big.bin"], by_name["d2-log.csv"]])
            assert all(isinstance(target, Target) for target in urls.values())
            progress: list[int] = []
            fetched = await client.download(
                by_name["big.bin"], tmp_path / "big.bin", progress=progress.append
            )
            assert fetched.sha256 == sha256(server.files["files/big.bin"]) == by_name["big.bin"].sha256
            assert sum(progress) == len(server.files["files/big.bin"])
            upload = tmp_path / "from-the-library.txt"
            upload.write_bytes(b"uploaded through Client.upload\n")
            result = await client.upload("a-hostile", upload, tags={"via": "library"})
            assert result.error is None and result.content_id
            again = {remote.name: remote for remote in (await client.list_files("a-hostile")).files}
            assert again["from-the-library.txt"].tags == {"via": "library"}
            missing = RemoteFile("00000000-0000-0000-0000-000000000000", "x", Origin.USER, 1, "")
            assert isinstance((await client.download_urls([missing]))[missing.id], Gone)

    asyncio.run(run())


def test_sync_returns_a_report_and_tells_the_listener(server: Server, tmp_path: Path) -> None:
    recorder = Recorder()
    report = asyncio.run(sync(server.base_url, TOKEN, ["a-mirror"], tmp_path, listener=recorder))
    assert report.ok and report.downloaded == 5 and report.assets == 1
    assert recorder.bytes == report.received_bytes
    assert sorted(e.path or "" for e in recorder.events if e.kind is Kind.DOWNLOADED) == [
        "devices/p1.d1/d1-log.csv", "devices/p1.d2/d2-log.csv", "user/big.bin", "user/manual.pdf",
        "user/notes.txt",
    ]  # fmt: skip
    second = asyncio.run(sync(server.base_url, TOKEN, ["a-mirror"], tmp_path, SyncOptions(delete=True)))
    assert second.downloaded == 0 and second.unchanged == 5


def test_fatal_outcomes_are_raised(server: Server, tmp_path: Path) -> None:
    with pytest.raises(Fatal, match="refused the token"):
        asyncio.run(sync(server.base_url, "tok-wrong-0123456789", ["a-mirror"], tmp_path))
    with pytest.raises(Fatal, match="cannot reach"):
        asyncio.run(sync("http://127.0.0.1:9", TOKEN, ["a-mirror"], tmp_path, retry=RetryPolicy(attempts=2)))
    with exclusive(tmp_path), pytest.raises(FolderBusy, match="another assetfiles run"):
        asyncio.run(sync(server.base_url, TOKEN, ["a-mirror"], tmp_path))


def test_a_client_outside_its_context_says_how_to_use_it(server: Server) -> None:
    with pytest.raises(RuntimeError, match="async with"):
        asyncio.run(Client(server.base_url, TOKEN).assets())


def test_against_a_server_without_additions_urls_are_resolved_in_batches(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The platform's shape: no introspection answers, no URLs in listings, no digests, no cursor.
    User content is resolved through content(id), device content through deviceAssetContent."""
    from assetfiles.client.exosense import ExoSenseSource

    async def documented_only(self: ExoSenseSource) -> None:
        self.connected = True  # as when introspection is refused: documented fields only

    monkeypatch.setattr(ExoSenseSource, "connect", documented_only)
    resolved: list[int] = []
    original = ExoSenseSource._resolve_batch

    async def counting(self: ExoSenseSource, files: list[RemoteFile]) -> dict[str, Target | Failed]:
        assert all(remote.target is None and remote.sha256 is None for remote in files)
        resolved.append(len(files))
        return await original(self, files)

    monkeypatch.setattr(ExoSenseSource, "_resolve_batch", counting)
    report = asyncio.run(sync(server.base_url, TOKEN, ["a-mirror"], tmp_path, SyncOptions(resolve_batch=2)))
    assert report.ok and report.downloaded == 5
    assert sorted(resolved) == [1, 2, 2]
    assert (tmp_path / "a-mirror/devices/p1.d2/d2-log.csv").read_bytes() == server.files["files/d2-log.csv"]
