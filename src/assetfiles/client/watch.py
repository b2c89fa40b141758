"""Keeping a mirror current: ``sync --watch``.

A watch holds the folder, syncs every asset once, then re-syncs only the assets that changed:

- Against assetfiles, changes come from ``GET /api/events`` (server-sent events): each names
  the content's associations, so the asset (or, through the devices its listing named, the
  assets a device feeds) is marked dirty; a short quiet period gathers a burst into one round.
  The stream reconnects with ``Last-Event-ID``; a ``reset`` (the server no longer has the events
  after our id) re-syncs everything. The stream is opened before the first sync, so nothing
  that changes during it is missed.
- Against any other ExoSense server (no event feed), it polls: one request per asset asks for
  the newest content (the documented ``orderBy: updated_at, sort: desc`` with limit 1) and
  ``totalCount``, for user and device content at once. A new file, a changed file (its
  ``lastModified`` becomes the newest) and a deleted one (the count drops) all change that
  signature. Quiet polls stretch the interval up to ``max_interval``; a change brings it back.

Either way a full round runs every ``full_every`` seconds as a safety net (and, with ``--all``,
picks up new assets). ``exec_command`` runs once per downloaded file, after its round, with the
file in ``ASSETFILES_PATH`` (and ``ASSETFILES_ASSET``, ``ASSETFILES_CONTENT_ID``) in its
environment: never interpolated into the command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from assetfiles.client.errors import Failed, Fatal
from assetfiles.client.events import Event, Kind, Listener, Report
from assetfiles.client.exosense import ExoSenseSource
from assetfiles.client.lock import exclusive
from assetfiles.client.remote import RemoteFile, Target
from assetfiles.client.retry import RetryPolicy
from assetfiles.client.source import Listing
from assetfiles.client.sync import Syncer, SyncOptions
from assetfiles.client.transfer import Fetcher

#: How long a burst of change events may keep arriving before its round starts.
QUIET_SECONDS = 0.3


@dataclass(frozen=True)
class WatchOptions:
    """How a watch detects changes and what it runs per downloaded file (docs/sync.md)."""

    interval: float = 30.0  # seconds between polls (no event feed)
    max_interval: float = 300.0  # quiet polls stretch the interval up to this
    full_every: float = 3600.0  # a full round at least this often
    events: bool = True  # use GET /api/events where the server has it
    exec_command: str | None = None
    exec_timeout: float = 300.0


@dataclass(frozen=True)
class SseEvent:
    event: str
    id: str | None
    data: str


async def server_sent_events(response: aiohttp.ClientResponse) -> AsyncIterator[SseEvent]:
    """The events of a ``text/event-stream`` body (the WHATWG format: fields, blank line ends one)."""
    kind: str = "message"
    identifier: str | None = None
    data: list[str] = []
    async for raw in response.content:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            if data or identifier is not None:
                yield SseEvent(kind, identifier, "\n".join(data))
            kind, identifier, data = "message", None, []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            kind = value
        elif name == "data":
            data.append(value)
        elif name == "id" and "\0" not in value:
            identifier = value


class _Recording:
    """The source, remembering which devices each asset's listing named (to route device events)."""

    def __init__(self, inner: ExoSenseSource) -> None:
        self.inner = inner
        self.devices: dict[str, frozenset[str]] = {}

    async def connect(self) -> None:
        await self.inner.connect()

    async def asset_ids(self) -> list[str]:
        return await self.inner.asset_ids()

    async def list_files(
        self,
        asset_id: str,
        content_types: Sequence[str] = (),
        name_glob: str | None = None,
        *,
        tags: bool = True,
    ) -> Listing:
        listing = await self.inner.list_files(asset_id, content_types, name_glob, tags=tags)
        self.devices[asset_id] = listing.devices
        return listing

    async def resolve(self, files: Sequence[RemoteFile]) -> dict[str, Target | Failed]:
        return await self.inner.resolve(files)


@dataclass
class _Collecting:
    """Passes events on, keeping the downloads of the round for the ``--exec`` hook."""

    inner: Listener
    downloaded: list[Event] = field(default_factory=list)

    def event(self, event: Event) -> None:
        if event.kind is Kind.DOWNLOADED:
            self.downloaded.append(event)
        self.inner.event(event)

    def progress(self, asset: str, path: str, delta: int) -> None:
        self.inner.progress(asset, path, delta)


class Watcher:
    def __init__(
        self,
        source: ExoSenseSource,
        session: aiohttp.ClientSession,
        events_url: str,
        authorization: dict[str, str],
        asset_ids: Sequence[str] | None,
        destination: Path,
        options: SyncOptions,
        watch: WatchOptions,
        listener: Listener,
        stop: asyncio.Event,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.source = _Recording(source)
        self.session = session
        self.events_url = events_url
        self.authorization = authorization
        self.all_assets = asset_ids is None
        self.assets: list[str] = list(dict.fromkeys(asset_ids or ()))
        self.destination = destination
        self.options = options
        self.watch = watch
        self.listener = _Collecting(listener)
        self.stop = stop
        self.retry = retry or RetryPolicy()
        self.fetcher = Fetcher(
            session, retry, streams=options.streams, multi_stream_min=options.multi_stream_min
        )
        self.total = Report()
        self.last_full = 0.0

    async def run(self) -> Report:
        """Watch until ``stop`` is set; the report sums every round. Raises Fatal."""
        with exclusive(self.destination):
            await self.source.connect()
            if self.all_assets:
                self.assets = await self.source.asset_ids()
            if not (self.watch.events and await self._follow_events()):
                await self._poll()
        self.total.assets = len(self.assets)
        return self.total

    # -- rounds -------------------------------------------------------------------------------

    async def _round(self, asset_ids: Sequence[str]) -> None:
        """One sync of ``asset_ids`` (all of them for a full round), then the hooks of its downloads."""
        if not asset_ids:
            return
        self.listener.downloaded.clear()
        syncer = Syncer(self.source, self.fetcher, self.destination, self.options, self.listener)
        self.total.add(await syncer.run(asset_ids))
        for event in list(self.listener.downloaded):
            await self._hook(syncer, event)

    async def _full_round(self) -> None:
        if self.all_assets:
            self.assets = await self.source.asset_ids()
        self.last_full = time.monotonic()
        await self._round(self.assets)

    def _full_due(self) -> bool:
        return time.monotonic() - self.last_full >= self.watch.full_every

    async def _hook(self, syncer: Syncer, event: Event) -> None:
        if not self.watch.exec_command or event.path is None:
            return
        path = syncer.folder(event.asset) / event.path
        env = {**os.environ, "ASSETFILES_PATH": str(path.resolve()), "ASSETFILES_ASSET": event.asset,
               "ASSETFILES_CONTENT_ID": event.content_id or ""}  # fmt: skip
        reason = None
        try:
            process = await asyncio.create_subprocess_shell(self.watch.exec_command, env=env)
            try:
                code = await asyncio.wait_for(process.wait(), self.watch.exec_timeout)
            except TimeoutError:
                process.kill()
                await process.wait()
                reason = f"--exec did not finish in {self.watch.exec_timeout:g} s"
            else:
                reason = f"--exec exited with {code}" if code else None
        except OSError as exc:
            reason = f"--exec could not start: {exc}"
        if reason is not None:
            failure = Event(Kind.FAILED, event.asset, event.path, event.content_id, reason=reason)
            self.total.failures.append(failure)
            self.listener.event(failure)

    # -- the event feed -----------------------------------------------------------------------

    async def _follow_events(self) -> bool:
        """Follow ``GET /api/events`` until stopped; False when the server has no feed (poll instead)."""
        last_id: str | None = None
        failures = 0
        synced = False
        while not self.stop.is_set():
            headers = {**self.authorization, "Accept": "text/event-stream"}
            if last_id is not None:
                headers["Last-Event-ID"] = last_id
            try:
                async with self.session.get(self.events_url, headers=headers) as response:
                    if response.status in (404, 405) and not synced:
                        return False
                    if response.status in (401, 403):
                        raise Fatal(
                            f"the server refused the token for its event feed (HTTP {response.status})"
                        )
                    if response.status != 200:
                        raise aiohttp.ClientResponseError(
                            response.request_info, (), status=response.status, message="event feed"
                        )
                    failures = 0
                    if not synced:  # the stream is open: whatever changes from now on is in it
                        await self._full_round()
                        synced = True
                    last_id = await self._consume(response, last_id)
            except (aiohttp.ClientError, TimeoutError):
                failures += 1
                await self._sleep(self.retry.wait(failures))
        return True

    async def _consume(self, response: aiohttp.ClientResponse, last_id: str | None) -> str | None:
        """Read events, running a round after each burst; returns the last event id seen."""
        queue: asyncio.Queue[SseEvent | None] = asyncio.Queue()

        async def read() -> None:
            try:
                async for event in server_sent_events(response):
                    await queue.put(event)
            finally:
                await queue.put(None)

        reader = asyncio.create_task(read())
        stopping = asyncio.create_task(self.stop.wait())
        try:
            while True:
                getting = asyncio.create_task(queue.get())
                timeout = max(0.0, self.watch.full_every - (time.monotonic() - self.last_full))
                done, _ = await asyncio.wait(
                    {getting, stopping}, timeout=timeout, return_when="FIRST_COMPLETED"
                )
                if stopping in done:
                    getting.cancel()
                    return last_id
                if getting not in done:  # quiet for full_every: the safety-net round
                    getting.cancel()
                    await self._full_round()
                    continue
                first = getting.result()
                if first is None:
                    return last_id
                burst = [first]
                ended = False
                while not ended:
                    try:
                        following = await asyncio.wait_for(queue.get(), QUIET_SECONDS)
                    except TimeoutError:
                        break
                    if following is None:
                        ended = True
                    else:
                        burst.append(following)
                last_id = next((e.id for e in reversed(burst) if e.id is not None), last_id)
                await self._round(self._dirty(burst))
                if ended:
                    return last_id
        finally:
            reader.cancel()
            stopping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    def _dirty(self, burst: Sequence[SseEvent]) -> list[str]:
        dirty: dict[str, None] = {}
        for event in burst:
            if event.event == "reset":
                return list(self.assets)
            if event.event != "content":
                continue
            try:
                links = json.loads(event.data).get("associations") or []
            except (ValueError, AttributeError):
                continue
            for link in links:
                kind, target = link.get("type"), link.get("id")
                if kind == "asset" and (target in self.assets or self.all_assets):
                    if target not in self.assets:
                        self.assets.append(target)  # --all: an asset that got its first file
                    dirty[target] = None
                elif kind == "device":
                    for asset_id, devices in self.source.devices.items():
                        if target in devices:
                            dirty[asset_id] = None
        return list(dirty)

    # -- polling ------------------------------------------------------------------------------

    async def _poll(self) -> None:
        signatures = {asset_id: await self._signature(asset_id) for asset_id in self.assets}
        await self._full_round()
        interval = self.watch.interval
        while not self.stop.is_set():
            await self._sleep(interval)
            if self.stop.is_set():
                return
            if self._full_due():
                signatures = {asset_id: await self._signature(asset_id) for asset_id in self.assets}
                await self._full_round()
                continue
            dirty = []
            for asset_id in self.assets:
                signature = await self._signature(asset_id)
                if signature is None or signature != signatures.get(asset_id):
                    dirty.append(asset_id)
                signatures[asset_id] = signature
            if dirty:
                await self._round(dirty)
                interval = self.watch.interval
            else:
                interval = min(interval * 1.5, self.watch.max_interval)

    async def _signature(self, asset_id: str) -> object:
        """What changes when any file of the asset is added, changed or deleted (None: unknown)."""
        try:
            return await self.source.inner.signature(asset_id, sorted(self.source.devices.get(asset_id, ())))
        except Failed:
            return None
        except (aiohttp.ClientError, TimeoutError):
            return None

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)
