"""Backup of the embedded default (SQLite catalog + blob directory), taken while the server runs.

Order matters: the catalog is copied first, with SQLite's online backup API (a consistent
snapshot, writers keep going), then the blobs the snapshot names. Blobs are immutable and
written before the rows that name them, so every row in the snapshot has its blob on disk when
the copy reaches it, unless that content is deleted in between. Such contents are deleted from
the copy too, through the catalog's own delete (usage, counts and the change log follow), so
the backup is a state the live system passed through and ``fsck --verify`` finds it whole. The
server key goes too: without it signed URLs change and EnOS application secrets cannot be
opened.

Restoring is using the backup directory as a data directory (or copying it back into place).
PostgreSQL and S3 have their own tools (``pg_dump``, bucket versioning): docs/operations.md.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import anyio

from assetfiles.config import Settings
from assetfiles.errors import BadInput
from assetfiles.store.blobs import blob_path
from assetfiles.store.contents import ContentStore
from assetfiles.store.database import copy_sqlite, create_engine


@dataclass(frozen=True)
class BackupReport:
    destination: Path
    blobs: int
    blob_bytes: int
    #: False when the key comes from the settings (ASSETFILES_SECRET_KEY): keep it with them
    key_copied: bool


def backup(settings: Settings, destination: Path) -> BackupReport:
    """Copy the catalog (online), the blobs and the server key into ``destination`` (blocking)."""
    if settings.database_url or settings.blob_url:
        raise BadInput(
            "backup: only the embedded default (SQLite + local blobs) is backed up this way; "
            "use pg_dump and the object store's versioning for PostgreSQL and S3",
            field="data_dir",
        )
    source = settings.data_dir / "catalog.sqlite3"
    if not source.exists():
        raise BadInput(f"data_dir: no catalog at {source}", field="data_dir")
    if destination.exists() and any(destination.iterdir()):
        raise BadInput(f"destination: {destination} exists and is not empty", field="destination")
    destination.mkdir(parents=True, exist_ok=True)
    os.chmod(destination, 0o700)
    copy_sqlite(source, destination / "catalog.sqlite3")
    key = settings.data_dir / "secret.key"
    key_copied = key.exists() and not settings.secret_key
    if key_copied:
        shutil.copy2(key, destination / "secret.key")
        os.chmod(destination / "secret.key", 0o600)
    copied = ContentStore(create_engine(f"sqlite:///{destination / 'catalog.sqlite3'}"))
    try:
        count, size = anyio.run(_copy_blobs, copied, settings.blob_path, destination / "blobs")
    finally:
        copied.engine.dispose()
    return BackupReport(destination, count, size, key_copied)


async def _copy_blobs(copied: ContentStore, source: Path, target: Path) -> tuple[int, int]:
    """Copy the blobs the copied catalog names; delete from it the contents whose blob the live
    system deleted meanwhile. Returns (blobs, bytes) copied."""
    named = await copied.blob_digests()
    count = size = 0
    vanished = set()
    for sha256 in named:
        relative = blob_path(sha256)
        copy = target / relative
        copy.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copy2(source / relative, copy)
        except FileNotFoundError:
            vanished.add(sha256)  # its contents were deleted after the snapshot
            continue
        count += 1
        size += copy.stat().st_size
    for org_id, content_id in await copied.contents_of_blobs(sorted(vanished)):
        await copied.delete_content(org_id, content_id)
    return count, size
