"""Sync as a plan, then an execution: what to fetch, move, keep and delete in one asset folder.

Planning reads only the listing, the manifest and ``stat`` of local files, so ``--dry-run``
prints exactly what a real run would do.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from assetfiles.client.manifest import Entry, Manifest
from assetfiles.client.naming import assign_paths
from assetfiles.client.remote import RemoteFile


@dataclass(frozen=True)
class Filters:
    """Which remote files a sync considers. Content types go to the server; the rest apply here."""

    content_types: tuple[str, ...] = ()
    tags: tuple[tuple[str, str | None], ...] = ()  # (name, value); None: any value
    name_glob: str | None = None
    modified_since: datetime | None = None

    def accepts(self, remote: RemoteFile) -> bool:
        if self.content_types and remote.content_type not in self.content_types:
            return False
        for name, value in self.tags:
            if name not in remote.tags or (value is not None and remote.tags[name] != value):
                return False
        if self.name_glob and not fnmatch.fnmatchcase(remote.name.casefold(), self.name_glob.casefold()):
            return False
        return not (self.modified_since and _instant(remote.last_modified) < self.modified_since)


def _instant(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return datetime.max.replace(tzinfo=UTC)  # unparseable: never filtered out by date
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class Reason(StrEnum):
    NEW = "new"
    CHANGED = "changed"
    MISSING = "missing locally"
    ALTERED = "changed locally"


@dataclass(frozen=True)
class Download:
    remote: RemoteFile
    path: str
    reason: Reason


@dataclass(frozen=True)
class Move:
    remote: RemoteFile
    old_path: str
    path: str


@dataclass(frozen=True)
class Delete:
    content_id: str
    path: str


@dataclass
class Plan:
    asset_id: str
    downloads: list[Download] = field(default_factory=list)
    moves: list[Move] = field(default_factory=list)
    deletes: list[Delete] = field(default_factory=list)
    unchanged: int = 0
    #: Same bytes (same sha256) under new metadata, e.g. after a tag change: only the manifest changes.
    refreshed: list[tuple[RemoteFile, str]] = field(default_factory=list)

    @property
    def bytes_to_fetch(self) -> int:
        return sum(item.remote.length for item in self.downloads)


def entry_for(remote: RemoteFile, path: str, *, sha256: str | None = None) -> Entry:
    """The manifest record of ``remote`` at ``path``; ``sha256`` is what was verified on download."""
    return Entry(path, remote.name, remote.last_modified, remote.length, sha256 or remote.sha256)


def _local_state(folder: Path, entry: Entry) -> Reason | None:
    """None when the file recorded in the manifest is still on disk as it was written."""
    try:
        size = (folder / entry.path).stat().st_size
    except FileNotFoundError:
        return Reason.MISSING
    return None if size == entry.length else Reason.ALTERED


def make_plan(
    asset_id: str,
    folder: Path,
    listing: Sequence[RemoteFile],
    manifest: Manifest,
    filters: Filters,
    *,
    delete: bool,
    paths: dict[str, str] | None = None,
) -> Plan:
    """Compare the whole listing with the manifest.

    ``filters`` narrow what is fetched, not what is deleted: only content gone from the server is.
    ``paths``: where each file goes in the folder (default: :func:`assign_paths`).
    """
    plan = Plan(asset_id)
    paths = assign_paths(listing) if paths is None else paths
    for remote in listing:
        if not filters.accepts(remote):
            continue
        path = paths[remote.id]
        entry = manifest.entries.get(remote.id)
        if entry is None:
            plan.downloads.append(Download(remote, path, Reason.NEW))
            continue
        same_bytes = (
            remote.sha256 == entry.sha256
            if remote.sha256 is not None
            else (remote.last_modified, remote.length) == (entry.last_modified, entry.length)
        )
        if not same_bytes or remote.length != entry.length:
            plan.downloads.append(Download(remote, path, Reason.CHANGED))
            continue
        local = _local_state(folder, entry)
        if local is not None:
            plan.downloads.append(Download(remote, path, local))
        elif entry.path != path:
            plan.moves.append(Move(remote, entry.path, path))
        else:
            plan.unchanged += 1
            if entry.last_modified != remote.last_modified or entry.name != remote.name:
                plan.refreshed.append((remote, path))
    if delete:
        present = {remote.id for remote in listing}
        plan.deletes = [
            Delete(content_id, entry.path)
            for content_id, entry in sorted(manifest.entries.items())
            if content_id not in present
        ]
    return plan
