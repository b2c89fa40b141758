"""Content-addressed blob storage.

Bytes are streamed to a temporary file while being hashed, fsynced, then renamed to their
sha256: a reader never sees a half-written blob, identical files are stored once, and a crash
leaves at most a temporary file or an orphan blob (never a catalog row without bytes, since the
catalog row is written only after :meth:`LocalBlobStore.write` returns).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Protocol

import anyio
import anyio.to_thread

from assetfiles.errors import IntegrityMismatch, PayloadTooLarge
from assetfiles.model import SHA256_HEX, Delivery, LocalFile
from assetfiles.store.blob_cache import SmallBlobCache

FLUSH_BYTES = 1024 * 1024


@dataclass(frozen=True)
class BlobInfo:
    sha256: str
    length: int
    modified: float  # epoch seconds


@dataclass(frozen=True)
class StoredBlob:
    sha256: str
    md5: str
    length: int


class BlobDigests:
    """What a content records of its bytes (sha256, md5, length), computed as they pass."""

    def __init__(self) -> None:
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.length = 0

    def update(self, data: bytes) -> None:
        self.sha256.update(data)
        self.md5.update(data)
        self.length += len(data)

    def result(self) -> StoredBlob:
        return StoredBlob(self.sha256.hexdigest(), self.md5.hexdigest(), self.length)


def write_all(fd: int, data: bytes) -> None:
    """``os.write`` until every byte is written (it may take fewer at a time)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def blob_path(sha256: str) -> str:
    """``<aa>/<bb>/<sha256>``: where a blob sits under a directory, a bucket prefix or nginx's alias."""
    if not SHA256_HEX.fullmatch(sha256):
        raise ValueError(f"not a sha256 digest: {sha256!r}")
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}"


@dataclass(frozen=True)
class WriteChecks:
    """What every backend enforces while bytes stream in, and once they are all there."""

    max_length: int
    expected_length: int | None
    expected_sha256: str | None
    expected_md5: str | None = None

    def received(self, length: int) -> None:
        """Refuse as soon as the bytes so far pass the declared length or the upload limit."""
        limit = (
            self.max_length if self.expected_length is None else min(self.max_length, self.expected_length)
        )
        if length <= limit:
            return
        if self.expected_length is not None and self.expected_length <= self.max_length:
            raise IntegrityMismatch(
                f"body is longer than the declared length {self.expected_length}", field="length"
            )
        raise PayloadTooLarge(f"body exceeds the upload limit of {self.max_length} bytes")

    def complete(self, blob: StoredBlob) -> None:
        if self.expected_length is not None and blob.length != self.expected_length:
            raise IntegrityMismatch(
                f"received {blob.length} bytes, declared length is {self.expected_length}", field="length"
            )
        if self.expected_sha256 is not None and blob.sha256 != self.expected_sha256:
            raise IntegrityMismatch(
                f"received bytes have sha256 {blob.sha256}, declared {self.expected_sha256}", field="sha256"
            )
        if self.expected_md5 is not None and blob.md5 != self.expected_md5:
            raise IntegrityMismatch(
                f"received bytes have md5 {blob.md5}, declared {self.expected_md5}", field="md5"
            )


class BlobStore(Protocol):
    """What serving and storing content needs of any blob backend: a local directory or
    S3-compatible storage."""

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def check_writable(self) -> None:
        """Raise unless a blob could be written now (readiness)."""
        ...

    async def write(
        self,
        chunks: AsyncIterable[bytes],
        *,
        max_length: int,
        expected_length: int | None = None,
        expected_sha256: str | None = None,
        expected_md5: str | None = None,
    ) -> StoredBlob: ...

    def deliver(
        self, sha256: str, *, name: str, content_type: str, expires_at: int, inline: bool
    ) -> Delivery:
        """How these bytes reach a caller until ``expires_at`` (epoch seconds), answered without
        I/O: a local file, a redirect to the store's own URL (answering with ``name`` and
        ``content_type``), or, with ``inline`` (an API that must answer with the bytes), a stream."""
        ...

    async def exists(self, sha256: str) -> bool: ...
    async def remove_unless(self, sha256: str, still_used: Callable[[], Awaitable[bool]]) -> bool:
        """Remove a blob unless ``still_used()`` says a content names it (checked under the
        store's removal lock, so an upload committing the same digest keeps its bytes)."""
        ...


class BlobMaintenance(Protocol):
    """What gc and fsck need besides: walking, measuring and reading every blob."""

    async def blob_length(self, sha256: str) -> int | None: ...
    def list_blobs(self) -> AsyncIterator[BlobInfo]: ...
    def read_blob(self, sha256: str) -> AsyncIterator[bytes]: ...
    async def remove_stale_temporaries(self, older_than: float) -> int: ...
    async def remove_unless(self, sha256: str, still_used: Callable[[], Awaitable[bool]]) -> bool: ...


class BlobBackend(BlobStore, BlobMaintenance, Protocol):
    """A backend whole (LocalBlobStore, S3BlobStore): what the composition root opens."""


class _PendingFile:
    """A temporary file being filled and hashed; its blocking calls run in worker threads."""

    def __init__(self, path: Path, mode: int = 0o600) -> None:
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        os.fchmod(self.fd, mode)  # whatever the umask
        self.digests = BlobDigests()
        self.discarded = False

    def append(self, data: bytes) -> None:
        self.digests.update(data)
        write_all(self.fd, data)

    def seal(self) -> None:
        os.fsync(self.fd)
        os.close(self.fd)
        self.fd = -1

    def discard(self) -> None:
        """Close and remove the file (when it was moved into place, nothing is left to remove)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        self.path.unlink(missing_ok=True)
        self.discarded = True


class LocalBlobStore:
    """Blobs under ``root/<aa>/<bb>/<sha256>``; temporary files under ``root/tmp``."""

    def __init__(self, root: Path, *, group_read: bool = False, cache_bytes: int = 0) -> None:
        """Directories and files are created owner-only; ``group_read`` lets the group read them
        too (for nginx offload, whose workers read the blob files: docs/nginx.md). Up to
        ``cache_bytes`` of small blobs are kept in memory for downloads (store/blob_cache.py)."""
        self.root = root
        self.cache = SmallBlobCache(cache_bytes)
        self.dir_mode = 0o750 if group_read else 0o700
        self.file_mode = 0o640 if group_read else 0o600
        self.tmp = root / "tmp"
        self.make_directory(self.tmp)

    def make_directory(self, path: Path) -> None:
        """Create ``path`` and its missing parents with this store's mode (umask aside)."""
        missing = []
        while not path.exists():
            missing.append(path)
            path = path.parent
        for directory in reversed(missing):
            with contextlib.suppress(FileExistsError):
                directory.mkdir(mode=self.dir_mode)
                os.chmod(directory, self.dir_mode)

    def local_path(self, sha256: str) -> Path:
        return self.root / blob_path(sha256)

    async def check_writable(self) -> None:
        probe = self.tmp / f"ready-{uuid.uuid4().hex}.probe"

        def write_and_remove() -> None:
            probe.write_bytes(b"ok")
            probe.unlink()

        await anyio.to_thread.run_sync(write_and_remove)

    async def exists(self, sha256: str) -> bool:
        return await anyio.to_thread.run_sync(self.local_path(sha256).exists)

    async def remove_unless(self, sha256: str, still_used: Callable[[], Awaitable[bool]]) -> bool:
        """Delete a blob unless ``still_used()`` says a content row references it.

        The blob is first moved aside, then ``still_used`` is asked again, so that an upload of
        the same bytes racing with this delete either sees the blob gone (and fails cleanly, see
        the upload service) or makes this call put it back. Returns True if the blob was removed.
        """
        if await still_used():
            return False
        final = self.local_path(sha256)
        aside = self.tmp / f"{sha256}.{uuid.uuid4().hex}.deleting"
        try:
            await anyio.to_thread.run_sync(os.replace, final, aside)
        except FileNotFoundError:
            return False
        if await still_used():
            await anyio.to_thread.run_sync(os.replace, aside, final)
            return False
        await anyio.to_thread.run_sync(aside.unlink)
        return True

    async def write(
        self,
        chunks: AsyncIterable[bytes],
        *,
        max_length: int,
        expected_length: int | None = None,
        expected_sha256: str | None = None,
        expected_md5: str | None = None,
    ) -> StoredBlob:
        checks = WriteChecks(max_length, expected_length, expected_sha256, expected_md5)
        pending = _PendingFile(self.tmp / f"{uuid.uuid4().hex}.part", self.file_mode)
        buffer = bytearray()
        try:
            async for chunk in chunks:
                buffer += chunk
                checks.received(pending.digests.length + len(buffer))
                if len(buffer) >= FLUSH_BYTES:
                    data, buffer = bytes(buffer), bytearray()
                    await anyio.to_thread.run_sync(pending.append, data)
            # one hop for the rest: a small file's whole life in the thread pool is this call
            return await anyio.to_thread.run_sync(self._finish, pending, bytes(buffer), checks)
        finally:
            if not pending.discarded:
                await anyio.to_thread.run_sync(pending.discard)

    def _finish(self, pending: _PendingFile, rest: bytes, checks: WriteChecks) -> StoredBlob:
        """Write the last bytes, make the file durable, check it and move it into place."""
        try:
            if rest:
                pending.append(rest)
            pending.seal()
            blob = pending.digests.result()
            checks.complete(blob)
            self._commit(pending.path, blob.sha256)
            return blob
        finally:
            pending.discard()

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    def deliver(
        self, sha256: str, *, name: str, content_type: str, expires_at: int, inline: bool
    ) -> Delivery:
        # the transfer endpoint (or nginx, see docs/nginx.md) serves local blobs, Range included
        relative = blob_path(sha256)
        path = os.path.join(self.root, relative)
        return LocalFile(path, relative, lambda length: self.cache.read(sha256, path, length))

    async def list_blobs(self) -> AsyncIterator[BlobInfo]:
        listing = self._iter_blobs()
        while batch := await anyio.to_thread.run_sync(lambda: list(islice(listing, 1000))):
            for blob in batch:
                yield blob

    def _iter_blobs(self) -> Iterator[BlobInfo]:
        """Every committed blob (``aa/bb/<sha256>``); temporary files are not blobs."""
        for first in sorted(self.root.glob("[0-9a-f][0-9a-f]")):
            for second in sorted(first.glob("[0-9a-f][0-9a-f]")):
                for path in second.iterdir():
                    if SHA256_HEX.fullmatch(path.name):
                        with contextlib.suppress(FileNotFoundError):
                            stat = path.stat()
                            yield BlobInfo(path.name, stat.st_size, stat.st_mtime)

    async def blob_length(self, sha256: str) -> int | None:
        try:
            return (await anyio.to_thread.run_sync(self.local_path(sha256).stat)).st_size
        except FileNotFoundError:
            return None

    async def read_blob(self, sha256: str) -> AsyncIterator[bytes]:
        async with await anyio.open_file(self.local_path(sha256), "rb") as handle:
            while chunk := await handle.read(FLUSH_BYTES):
                yield chunk

    async def remove_stale_temporaries(self, older_than: float) -> int:
        return await anyio.to_thread.run_sync(self._remove_stale_temporaries, older_than)

    def _remove_stale_temporaries(self, older_than: float) -> int:
        """Delete temporary files (crashed uploads, interrupted deletes) untouched since ``older_than``."""
        removed = 0
        for path in self.tmp.iterdir():
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime < older_than:
                    path.unlink()
                    removed += 1
        return removed

    def _commit(self, temporary: Path, sha256: str) -> None:
        final = self.local_path(sha256)
        if final.exists():
            return  # the same bytes are already stored; the temporary file is discarded
        self.make_directory(final.parent)
        os.replace(temporary, final)
        _sync_directory(final.parent)

    def link_in(self, source: Path, sha256: str) -> None:
        """Make the durable file ``source`` (hashing to ``sha256``) a blob too, without moving it:
        a resumable upload keeps its spool file until the catalog lists the content."""
        final = self.local_path(sha256)
        if final.exists():
            return
        self.make_directory(final.parent)
        with contextlib.suppress(FileExistsError):  # the same bytes, linked in by a racing upload
            os.link(source, final)
        _sync_directory(final.parent)


def _sync_directory(path: Path) -> None:
    directory = os.open(path, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
