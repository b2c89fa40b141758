"""Mirroring assets into a folder: list, plan against the manifest, then fetch on a bounded worker pool.

Layout: ``<dir>/<asset>/user/<name>`` for users' and API content and
``<dir>/<asset>/devices/<product>.<device>/<name>`` for what each device uploaded; the manifest
and partial downloads live in ``<dir>/<asset>/.assetfiles/``.

Assets are listed a few at a time; their downloads share one queue served by ``concurrency``
workers on one connection pool, so a run over thousands of small assets keeps every connection
busy. URLs are resolved in batches just before the queue takes them (the queue is bounded), so
they do not expire while waiting; one that does is resolved again by the fetcher.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from assetfiles.client.errors import E, Failed, Fatal, Gone, first_of
from assetfiles.client.events import Event, Kind, Listener, Report
from assetfiles.client.manifest import CONTROL_DIR, Manifest
from assetfiles.client.naming import assign_paths, safe_component
from assetfiles.client.plan import Download, Filters, Move, Plan, entry_for, make_plan
from assetfiles.client.remote import RemoteFile, Target
from assetfiles.client.source import Source
from assetfiles.client.transfer import MULTI_STREAM_MIN, Fetcher

#: How often a long-running asset's manifest is saved, so a crash loses little bookkeeping.
MANIFEST_SAVE_SECONDS = 2.0
#: A URL the listing gave is used only with this many seconds left; otherwise it is resolved anew.
URL_MARGIN = 60.0


class Layout(StrEnum):
    """Where files land: ``<dir>/<asset>/user|devices/...`` (a sync), or ``<dir>/<name>`` (EnOS by URI)."""

    ASSET_FOLDERS = "asset-folders"
    FLAT = "flat"


@dataclass(frozen=True)
class SyncOptions:
    """How a sync runs. ``streams``: ranged streams per file of at least ``multi_stream_min`` bytes."""

    filters: Filters = field(default_factory=Filters)
    delete: bool = False
    dry_run: bool = False
    concurrency: int = 16
    listing_concurrency: int = 4
    resolve_batch: int = 50
    streams: int = 4
    multi_stream_min: int = MULTI_STREAM_MIN
    layout: Layout = Layout.ASSET_FOLDERS


@dataclass
class _AssetRun:
    """One asset being synced: its folder, manifest and outstanding downloads."""

    asset_id: str
    folder: Path
    manifest: Manifest
    outstanding: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)
    saved_at: float = field(default_factory=time.monotonic)

    @property
    def partial_dir(self) -> Path:
        return self.folder / CONTROL_DIR / "partial"

    def save_soon(self) -> None:
        if time.monotonic() - self.saved_at >= MANIFEST_SAVE_SECONDS:
            self.manifest.save()
            self.saved_at = time.monotonic()


@dataclass(frozen=True)
class _Job:
    run: _AssetRun
    download: Download
    target: Target


class Syncer:
    def __init__(
        self, source: Source, fetcher: Fetcher, destination: Path, options: SyncOptions, listener: Listener
    ) -> None:
        self.source = source
        self.fetcher = fetcher
        self.destination = destination
        self.options = options
        self.listener = listener
        self.report = Report()
        self.queue: asyncio.Queue[_Job] = asyncio.Queue(maxsize=options.concurrency * 2)

    async def run(self, asset_ids: Sequence[str] | None) -> Report:
        """Sync ``asset_ids`` (None: every asset the token sees). Raises Fatal."""
        try:
            await self.source.connect()
            ids = list(asset_ids) if asset_ids is not None else await self.source.asset_ids()
            ids = list(dict.fromkeys(ids))
            self.report.assets = len(ids)
            listing_slots = asyncio.Semaphore(self.options.listing_concurrency)
            async with asyncio.TaskGroup() as group:
                workers = [group.create_task(self._worker()) for _ in range(self.options.concurrency)]
                async with asyncio.TaskGroup() as assets:
                    for asset_id in ids:
                        assets.create_task(self._sync_asset(asset_id, listing_slots))
                for worker in workers:
                    worker.cancel()
        except* Fatal as group:
            raise _matched(group, Fatal) from None
        except* Failed as group:  # ``--all``'s listing of assets failed: nothing to go on with
            raise Fatal(str(_matched(group, Failed))) from None
        except* OSError as group:
            # aiohttp's connection errors are OSErrors: the server cannot be reached at all
            raise Fatal(f"cannot reach the server: {_matched(group, OSError)}") from None
        return self.report

    def folder(self, asset_id: str) -> Path:
        if self.options.layout is Layout.FLAT:
            return self.destination
        return self.destination / safe_component(asset_id)

    def paths(self, files: Sequence[RemoteFile]) -> dict[str, str]:
        paths = assign_paths(files)
        if self.options.layout is Layout.FLAT:  # names stay unique: collisions are resolved per folder
            return {key: path.removeprefix("user/") for key, path in paths.items()}
        return paths

    async def _sync_asset(self, asset_id: str, slots: asyncio.Semaphore) -> None:
        folder = self.folder(asset_id)
        async with slots:
            try:
                filters = self.options.filters
                # --delete needs the whole listing: what a narrower one leaves out is not gone
                hint = None if self.options.delete else filters.name_glob
                found = await self.source.list_files(
                    asset_id, filters.content_types, hint, tags=bool(filters.tags)
                )
            except Failed as exc:
                self._asset_failed(asset_id, str(exc))
                return
        for content_id, failure in found.failures.items():
            event = Event(Kind.FAILED, asset_id, content_id, content_id, reason=str(failure))
            self.report.failures.append(event)
            self.listener.event(event)
        listing = found.files
        try:
            manifest = await asyncio.to_thread(Manifest.load, folder, asset_id)
        except OSError as exc:
            self._asset_failed(asset_id, f"cannot read {folder}: {exc}")
            return
        plan = make_plan(
            asset_id, folder, listing, manifest, self.options.filters, delete=self.options.delete,
            paths=self.paths(listing),
        )  # fmt: skip
        self.report.unchanged += plan.unchanged
        self.listener.event(
            Event(Kind.PLANNED, asset_id, files=len(plan.downloads), bytes=plan.bytes_to_fetch)
        )
        if self.options.dry_run:
            self._describe(plan)
            return
        run = _AssetRun(asset_id, folder, manifest)
        try:
            await asyncio.to_thread(self._apply_local_changes, run, plan)
        except OSError as exc:
            self._asset_failed(asset_id, f"cannot write {folder}: {exc}")
            return
        await self._enqueue(run, plan.downloads)
        while run.outstanding:  # ``done`` may have been set between two batches
            await run.done.wait()
            run.done.clear()
        try:
            await asyncio.to_thread(manifest.save)
        except OSError as exc:
            self._asset_failed(asset_id, f"cannot save the manifest in {folder}: {exc}")

    def _describe(self, plan: Plan) -> None:
        for download in plan.downloads:
            self.listener.event(Event(
                Kind.WOULD_FETCH, plan.asset_id, download.path, download.remote.id,
                download.remote.length, str(download.reason),
            ))  # fmt: skip
        for move in plan.moves:
            self.listener.event(
                Event(Kind.WOULD_MOVE, plan.asset_id, move.path, move.remote.id, reason=move.old_path)
            )
        for removal in plan.deletes:
            self.listener.event(Event(Kind.WOULD_DELETE, plan.asset_id, removal.path, removal.content_id))

    def _apply_local_changes(self, run: _AssetRun, plan: Plan) -> None:
        """Deletions, then renames (through temporary names, so two files may swap names)."""
        run.folder.mkdir(parents=True, exist_ok=True)
        for removal in plan.deletes:
            with contextlib.suppress(FileNotFoundError):
                (run.folder / removal.path).unlink()
            del run.manifest.entries[removal.content_id]
            self.report.deleted += 1
            self.listener.event(Event(Kind.DELETED, run.asset_id, removal.path, removal.content_id))
        staged: list[tuple[Move, Path]] = []
        for move in plan.moves:
            temporary = run.folder / CONTROL_DIR / f"moving-{len(staged)}"
            temporary.parent.mkdir(parents=True, exist_ok=True)
            os.replace(run.folder / move.old_path, temporary)
            staged.append((move, temporary))
        for move, temporary in staged:
            final = run.folder / move.path
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temporary, final)
            run.manifest.entries[move.remote.id] = entry_for(move.remote, move.path)
            self.report.moved += 1
            self.listener.event(
                Event(Kind.MOVED, run.asset_id, move.path, move.remote.id, reason=move.old_path)
            )
        for remote, path in plan.refreshed:
            run.manifest.entries[remote.id] = entry_for(
                remote, path, sha256=run.manifest.entries[remote.id].sha256
            )
        if plan.deletes or plan.moves or plan.refreshed:
            run.manifest.save()

    async def _enqueue(self, run: _AssetRun, downloads: list[Download]) -> None:
        batch = self.options.resolve_batch
        for start in range(0, len(downloads), batch):
            chunk = downloads[start : start + batch]
            listed = {
                download.remote.id: download.remote.target
                for download in chunk
                if download.remote.target is not None and not download.remote.target.expired(URL_MARGIN)
            }
            unresolved = [download.remote for download in chunk if download.remote.id not in listed]
            targets: dict[str, Target | Failed] = {**listed}
            if unresolved:
                targets.update(await self.source.resolve(unresolved))
            for download in chunk:
                target = targets.get(download.remote.id) or Failed("no URL returned")
                if isinstance(target, Failed):
                    self._unresolved(run, download, target)
                    continue
                run.outstanding += 1
                await self.queue.put(_Job(run, download, target))

    def _unresolved(self, run: _AssetRun, download: Download, error: Failed) -> None:
        if isinstance(error, Gone):
            self.report.gone += 1
            self.listener.event(Event(Kind.GONE, run.asset_id, download.path, download.remote.id))
        else:
            self._failed(run.asset_id, download, str(error))

    async def _worker(self) -> None:
        while True:
            job = await self.queue.get()
            try:
                await self._fetch(job)
            finally:
                job.run.outstanding -= 1
                if job.run.outstanding == 0:
                    job.run.done.set()

    async def _fetch(self, job: _Job) -> None:
        run, download = job.run, job.download
        remote = download.remote
        self.listener.event(Event(Kind.STARTED, run.asset_id, download.path, remote.id, remote.length))

        async def resolve_again() -> Target:
            target = (await self.source.resolve([remote])).get(remote.id)
            if isinstance(target, Target):
                return target
            raise Failed(f"cannot resolve a new URL: {target}")

        def progress(delta: int) -> None:
            self.listener.progress(run.asset_id, download.path, delta)

        try:
            fetched = await self.fetcher.fetch(
                remote, job.target, run.folder / download.path, run.partial_dir, resolve_again, progress
            )
        except Gone:
            self.report.gone += 1
            self.listener.event(Event(Kind.GONE, run.asset_id, download.path, remote.id))
            return
        except Failed as exc:
            self._failed(run.asset_id, download, str(exc))
            return
        except OSError as exc:
            self._failed(run.asset_id, download, f"cannot write: {exc}")
            return
        previous = run.manifest.entries.get(remote.id)
        if previous is not None and previous.path != download.path:
            with contextlib.suppress(OSError):
                (run.folder / previous.path).unlink()  # the old copy was ours, under its old name
        run.manifest.entries[remote.id] = entry_for(remote, download.path, sha256=fetched.sha256)
        run.save_soon()
        self.report.downloaded += 1
        self.report.received_bytes += fetched.received
        self.listener.event(Event(Kind.DOWNLOADED, run.asset_id, download.path, remote.id, fetched.received))

    def _failed(self, asset_id: str, download: Download, reason: str) -> None:
        event = Event(Kind.FAILED, asset_id, download.path, download.remote.id, reason=reason)
        self.report.failures.append(event)
        self.listener.event(event)

    def _asset_failed(self, asset_id: str, reason: str) -> None:
        event = Event(Kind.ASSET_FAILED, asset_id, reason=reason)
        self.report.failures.append(event)
        self.listener.event(event)


def _matched(group: BaseExceptionGroup[Any], kind: type[E]) -> E:
    """What an ``except* kind`` clause caught, however deeply the nested task groups wrapped it."""
    found = first_of(group, kind)
    assert found is not None  # the clause matched only because the group holds one
    return found
