"""The client as a library: a typed ExoSense client, and whole syncs in one call.

Everything the ``assetfiles`` commands do is reachable from here; the CLI only parses options
and renders events. Example::

    import asyncio
    from pathlib import Path
    from assetfiles.client import Client, SyncOptions

    async def main() -> None:
        async with Client("http://127.0.0.1:8000", "tok-acme-demo-read-write") as client:
            for remote in (await client.list_files("a-pump-7")).files:
                print(remote.name, remote.length)
            report = await client.sync(["a-pump-7"], Path("mirror"), SyncOptions(delete=True))
            print(report.downloaded, "downloaded,", len(report.failures), "failed")

    asyncio.run(main())
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import aiohttp

from assetfiles.client.enos import EnosClient, EnosOwner, EnosSource
from assetfiles.client.errors import Failed, Fatal
from assetfiles.client.events import Event, Listener, Report
from assetfiles.client.exosense import ExoSenseSource, classify
from assetfiles.client.graphql import GraphQLClient, GraphQLClientError
from assetfiles.client.lock import exclusive
from assetfiles.client.remote import RemoteFile, Target
from assetfiles.client.responses import Fetched, Progress
from assetfiles.client.resumable import CredentialRefused, ResumableUploader
from assetfiles.client.retry import RetryPolicy
from assetfiles.client.session import client_session
from assetfiles.client.source import Listing, Source
from assetfiles.client.sync import Layout, Syncer, SyncOptions
from assetfiles.client.transfer import Fetcher
from assetfiles.client.upload import UploadResult, upload_file
from assetfiles.client.watch import Watcher, WatchOptions


class NoListener:
    """Ignores every event: the default when only the report matters."""

    def event(self, event: Event) -> None:
        pass

    def progress(self, asset: str, path: str, delta: int) -> None:
        pass


@dataclass(frozen=True)
class AssetInfo:
    """An asset as a sync sees it: its id and the devices whose uploads it lists."""

    id: str
    devices: tuple[str, ...]  # ``<product>.<device>`` of the devices that feed it


class Client:
    """An ExoSense API client (assetfiles or the platform) over one connection pool.

    Use it as an async context manager, or pass your own ``aiohttp.ClientSession``. Methods
    raise :class:`~assetfiles.client.errors.Fatal` when the token is refused and
    :class:`~assetfiles.client.errors.Failed` (or its :class:`Gone`) for what was asked.
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        concurrency: int = 16,
        retry: RetryPolicy | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.concurrency = concurrency
        self.retry = retry or RetryPolicy()
        #: the tus uploader once the server was asked whether it offers tus (False: it does not)
        self._resumable: ResumableUploader | None = None
        self._resumable_asked = False
        self._own_session = session is None
        self._session = session
        self._source: ExoSenseSource | None = None

    async def __aenter__(self) -> Client:
        if self._session is None:
            self._session = client_session(self.concurrency)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("use the client as 'async with Client(...) as client:'")
        return self._session

    @property
    def graphql(self) -> GraphQLClient:
        return GraphQLClient(self.session, self.url, self.token, retry=self.retry)

    async def source(self) -> ExoSenseSource:
        """The connected ExoSense source (what the server offers is learnt once per client)."""
        if self._source is None:
            self._source = ExoSenseSource(self.graphql)
        await self._source.connect()
        return self._source

    async def _sync_source(self, options: SyncOptions) -> ExoSenseSource:
        source = await self.source()
        source.resolve_batch = options.resolve_batch  # URLs per request, as the sync asks
        return source

    async def assets(self) -> list[str]:
        """Every asset id the token sees."""
        return await (await self.source()).asset_ids()

    async def asset(self, asset_id: str) -> AssetInfo:
        """The asset and its devices; raises Gone when there is no such asset."""
        return AssetInfo(asset_id, tuple(await (await self.source()).devices(asset_id)))

    async def list_files(
        self, asset_id: str, *, content_types: Sequence[str] = (), name: str | None = None
    ) -> Listing:
        """The asset's files (user content and its devices' content), every page.

        >>> # (await client.list_files("a-pump-7")).files[0].name
        """
        return await (await self.source()).list_files(asset_id, content_types, name)

    async def download_urls(self, files: Sequence[RemoteFile]) -> dict[str, Target | Failed]:
        """Signed download URLs for ``files``, by content id (or why there is none)."""
        return await (await self.source()).resolve(files)

    async def download(
        self, remote: RemoteFile, path: Path, *, streams: int = 4, progress: Progress | None = None
    ) -> Fetched:
        """Fetch one file to ``path`` (resumable, verified, renamed into place when whole)."""
        source = await self.source()

        async def resolve() -> Target:
            target = (await source.resolve([remote]))[remote.id]
            if isinstance(target, Failed):
                raise target
            return target

        fetcher = Fetcher(self.session, self.retry, streams=streams)
        partial_dir = path.parent / ".assetfiles" / "partial"
        return await fetcher.fetch(remote, await resolve(), path, partial_dir, resolve, progress or _ignore)

    async def upload(
        self,
        asset_id: str,
        path: Path,
        *,
        tags: dict[str, str] | None = None,
        progress: Progress | None = None,
    ) -> UploadResult:
        """Upload ``path`` as content of the asset (its sha256 declared up front), through tus when
        the server offers it: an upload cut off, or a process killed, resumes where the server
        stands on the next call for the same file. Errors are returned."""
        if not self._resumable_asked:
            uploader = ResumableUploader(self.session, self.url, self.token, retry=self.retry)
            self._resumable = uploader if await uploader.offered() else None
            self._resumable_asked = True
        try:
            return await upload_file(
                self.session, self.graphql, asset_id, path, tags=tags or {}, hashing=_ignore,
                sending=progress or _ignore, resumable=self._resumable,
            )  # fmt: skip
        except GraphQLClientError as exc:
            raise classify(exc, "upload") from None
        except CredentialRefused as exc:
            raise Fatal(f"the server refused the token ({exc})") from None

    async def sync(
        self,
        asset_ids: Sequence[str] | None,
        destination: Path,
        options: SyncOptions | None = None,
        listener: Listener | None = None,
    ) -> Report:
        """Mirror ``asset_ids`` (None: every asset) into ``destination``; see :func:`sync`."""
        options = options or SyncOptions()
        source = await self._sync_source(options)
        return await run_sync(source, self.session, asset_ids, destination, options, listener, self.retry)

    async def watch(
        self,
        asset_ids: Sequence[str] | None,
        destination: Path,
        stop: asyncio.Event,
        options: SyncOptions | None = None,
        watch: WatchOptions | None = None,
        listener: Listener | None = None,
    ) -> Report:
        """Keep ``destination`` a mirror of the assets until ``stop`` is set (:mod:`.watch`)."""
        options = options or SyncOptions()
        source = await self._sync_source(options)
        authorization = {"Authorization": f"Automation {self.token}"}
        watcher = Watcher(
            source, self.session, f"{self.url}/api/events", authorization, asset_ids, destination, options,
            watch or WatchOptions(), listener or NoListener(), stop, self.retry,
        )  # fmt: skip
        return await watcher.run()


async def run_sync(
    source: Source,
    session: aiohttp.ClientSession,
    asset_ids: Sequence[str] | None,
    destination: Path,
    options: SyncOptions,
    listener: Listener | None = None,
    retry: RetryPolicy | None = None,
) -> Report:
    """A sync from any :class:`Source`, holding the folder's lock (not for a dry run)."""
    fetcher = Fetcher(session, retry, streams=options.streams, multi_stream_min=options.multi_stream_min)
    with contextlib.nullcontext() if options.dry_run else exclusive(destination):
        syncer = Syncer(source, fetcher, destination, options, listener or NoListener())
        return await syncer.run(asset_ids)


async def sync(
    url: str,
    token: str,
    asset_ids: Sequence[str] | None,
    destination: Path,
    options: SyncOptions | None = None,
    listener: Listener | None = None,
    *,
    retry: RetryPolicy | None = None,
) -> Report:
    """Mirror assets' files from an ExoSense server into ``destination``; returns the report.

    Files land in ``<destination>/<asset>/user/<name>`` and ``.../devices/<product>.<device>/<name>``;
    a second run fetches only what changed. Raises :class:`Fatal` when nothing can be done
    (token refused, server unreachable, folder busy); per-file failures are in the report.

    >>> # report = asyncio.run(sync(url, token, ["a-pump-7"], Path("mirror")))
    """
    options = options or SyncOptions()
    async with Client(url, token, concurrency=options.concurrency, retry=retry) as client:
        return await client.sync(asset_ids, destination, options, listener)


async def enos_download(
    url: str,
    app_key: str,
    app_secret: str,
    org: str,
    owner: EnosOwner,
    uris: Sequence[str],
    destination: Path,
    *,
    category: str = "feature",
    options: SyncOptions | None = None,
    listener: Listener | None = None,
    retry: RetryPolicy | None = None,
) -> Report:
    """Fetch EnOS files by ``enos-connect://`` URI into ``destination/<name>`` (same engine as sync).

    A second run fetches only what changed; a URI the server does not know is a failure.
    """
    options = options or SyncOptions(concurrency=8)
    options = dataclasses.replace(options, layout=Layout.FLAT)
    async with client_session(options.concurrency) as session:
        client = EnosClient(session, url, app_key, app_secret)
        source = EnosSource(client, org, owner, category, uris, concurrency=options.concurrency)
        try:
            return await run_sync(source, session, None, destination, options, listener, retry)
        except aiohttp.ClientConnectionError as exc:
            raise Fatal(f"cannot reach the server: {exc}") from None


def _ignore(_delta: int) -> None:
    pass
