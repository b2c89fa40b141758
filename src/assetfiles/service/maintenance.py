"""Keeping the catalog and the blobs in step: ``gc`` removes bytes nothing uses, ``fsck`` finds
rows whose bytes are missing or corrupt.

Both walk in batches (blobs a thousand at a time against one catalog query; catalog rows a page
at a time), so memory stays flat on a million contents. ``gc`` never removes a blob younger than
the grace period: an upload writes its blob before its row, and a blob that young may be an
upload in flight. Each removal re-checks the catalog (``remove_unless``), so a concurrent upload
of the same bytes keeps them.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import anyio.to_thread

from assetfiles.model import StoredFile
from assetfiles.service.ports import Contents
from assetfiles.store.blobs import BlobInfo, BlobMaintenance

BATCH = 1000


@dataclass
class GcReport:
    blobs: int = 0
    removed: int = 0
    removed_bytes: int = 0
    too_recent: int = 0
    temporaries: int = 0
    #: EnOS multipart bodies spooled by requests that never finished (a crash, a kill)
    spool_dirs: int = 0
    #: resumable uploads whose time was up, with the bytes they held
    expired_uploads: int = 0
    would_remove: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Problem:
    kind: str  # "missing" | "length" | "sha256"
    content: StoredFile
    detail: str


@dataclass
class FsckReport:
    contents: int = 0
    blobs_checked: int = 0
    verified_bytes: int = 0
    problems: list[Problem] = field(default_factory=list)


#: Where the EnOS face spools multipart bodies (server/enos.py), one directory per request.
SPOOL_PREFIX = "enos-upload-"


def _remove_stale_spools(root: Path, cutoff: float) -> int:
    """Remove spool directories last touched before ``cutoff`` (requests long gone); blocking."""
    removed = 0
    for directory in root.glob(f"{SPOOL_PREFIX}*"):
        try:
            if directory.is_dir() and directory.stat().st_mtime < cutoff:
                shutil.rmtree(directory)
                removed += 1
        except FileNotFoundError:
            continue  # its request finished and removed it meanwhile
    return removed


class Maintenance:
    def __init__(
        self,
        contents: Contents,
        blobs: BlobMaintenance,
        spool_root: Path | None = None,
        expired_uploads: Callable[[bool], Awaitable[int]] | None = None,
    ) -> None:
        """``expired_uploads(dry_run)`` removes (or counts) the resumable uploads whose time is up."""
        self.expired_uploads = expired_uploads
        self.contents = contents
        self.blobs = blobs
        self.spool_root = spool_root

    async def gc(self, *, grace_seconds: float, dry_run: bool = False) -> GcReport:
        report = GcReport()
        if self.expired_uploads is not None:
            report.expired_uploads = await self.expired_uploads(dry_run)
        cutoff = time.time() - grace_seconds
        batch: list[BlobInfo] = []
        async for blob in self.blobs.list_blobs():
            batch.append(blob)
            if len(batch) >= BATCH:
                await self._collect(batch, report, cutoff, dry_run)
                batch = []
        await self._collect(batch, report, cutoff, dry_run)
        if not dry_run:
            report.temporaries = await self.blobs.remove_stale_temporaries(cutoff)
            if self.spool_root is not None:
                report.spool_dirs = await anyio.to_thread.run_sync(
                    _remove_stale_spools, self.spool_root, cutoff
                )
        return report

    async def _collect(self, batch: list[BlobInfo], report: GcReport, cutoff: float, dry_run: bool) -> None:
        """One catalog query for a batch of blobs, then the removal of the unused old ones."""
        if not batch:
            return
        report.blobs += len(batch)
        used = await self.contents.blobs_in_use([blob.sha256 for blob in batch])
        for blob in batch:
            if blob.sha256 in used:
                continue
            if blob.modified > cutoff:
                report.too_recent += 1
            elif dry_run:
                report.would_remove.append(blob.sha256)
            elif await self._remove(blob):
                report.removed += 1
                report.removed_bytes += blob.length

    async def _remove(self, blob: BlobInfo) -> bool:
        return await self.blobs.remove_unless(blob.sha256, lambda: self.contents.blob_in_use(blob.sha256))

    async def fsck(self, *, verify: bool = False) -> FsckReport:
        """Each content row against its blob: present, the right length and (``verify``) the right sha256."""
        report = FsckReport()
        checked: dict[str, str | None] = {}  # sha256 -> problem kind or None, so shared blobs are read once
        after = 0
        while page := await self.contents.stored_files_after(after, BATCH):
            after = page[-1][0]
            for _, stored in page:
                report.contents += 1
                if stored.sha256 not in checked:
                    checked[stored.sha256] = await self._check(stored, verify, report)
                    report.blobs_checked += 1
                problem = checked[stored.sha256]
                if problem is not None:
                    report.problems.append(Problem(problem, stored, _detail(problem, stored)))
        return report

    async def _check(self, stored: StoredFile, verify: bool, report: FsckReport) -> str | None:
        length = await self.blobs.blob_length(stored.sha256)
        if length is None:
            return "missing"
        if length != stored.length:
            return "length"
        if verify:
            digest = hashlib.sha256()
            async for chunk in self.blobs.read_blob(stored.sha256):
                digest.update(chunk)
                report.verified_bytes += len(chunk)
            if digest.hexdigest() != stored.sha256:
                return "sha256"
        return None


def _detail(kind: str, stored: StoredFile) -> str:
    return {
        "missing": f"the blob {stored.sha256} is missing",
        "length": f"the blob {stored.sha256} does not have the recorded {stored.length} bytes",
        "sha256": f"the bytes of blob {stored.sha256} no longer hash to it",
    }[kind]
