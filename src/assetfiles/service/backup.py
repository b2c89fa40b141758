"""Backup of the embedded default (SQLite catalog + blob directory), taken while the server runs.

Order matters: the catalog is copied first, with SQLite's online backup API (a consistent
snapshot, writers keep going), then the blobs. Blobs are immutable and written before the rows
that name them, so every row in the snapshot has its blob on disk when the copy reaches it —
unless that content is deleted in between, which ``fsck`` on the restored copy reports (and the
content is gone in the live system anyway). The server key goes too: without it signed URLs
change and EnOS application secrets cannot be opened.

Restoring is using the backup directory as a data directory (or copying it back into place).
PostgreSQL and S3 have their own tools (``pg_dump``, bucket versioning): docs/operations.md.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from assetfiles.config import Settings
from assetfiles.errors import BadInput


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
    live = sqlite3.connect(source)
    copy = sqlite3.connect(destination / "catalog.sqlite3")
    try:
        live.backup(copy)
    finally:
        copy.close()
        live.close()
    key = settings.data_dir / "secret.key"
    key_copied = key.exists() and not settings.secret_key
    if key_copied:
        shutil.copy2(key, destination / "secret.key")
        os.chmod(destination / "secret.key", 0o600)
    count = size = 0
    blob_root = settings.blob_path
    for path in sorted(blob_root.rglob("*")):
        relative = path.relative_to(blob_root)
        if not path.is_file() or relative.parts[0] == "tmp":
            continue
        target = destination / "blobs" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copy2(path, target)
        except FileNotFoundError:
            continue  # deleted since the listing: its content is gone from the live catalog too
        count += 1
        size += target.stat().st_size
    return BackupReport(destination, count, size, key_copied)
