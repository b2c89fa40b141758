"""Fetching one file to disk: resumable, retried, verified, and renamed into place only when whole.

Bytes go to ``<partial dir>/<key>.part`` beside a small JSON state record (the file's version,
the response's ETag and, for a multi-stream download, each range's progress). A later attempt,
or a later run after a crash, sends ``Range`` from the bytes already on disk with ``If-Range``;
a 200 answer means the server's bytes changed, so it starts over. A refused URL (401/403/410)
is resolved again and the transfer continues from the same offset. 429 and 5xx wait for
``Retry-After`` or the retry policy's backoff; resets and truncated bodies retry at once from
what arrived. The length, and the sha256 when the listing or ``Repr-Digest`` gives one, are
checked before the atomic rename to the final path.

Large files may be fetched as several ranged streams into one preallocated file
(:mod:`assetfiles.client.ranges`); everything else is one stream, hashed as it arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

import aiohttp

from assetfiles.client.errors import Failed, Refused, Retryable
from assetfiles.client.ranges import RangedDownload, RangesUnsupported
from assetfiles.client.remote import RemoteFile, Target
from assetfiles.client.responses import (
    CHUNK,
    TRANSIENT,
    Fetched,
    Progress,
    Resolve,
    classify_status,
    content_range_start,
    partial_key,
    repr_digest_sha256,
    verify,
)
from assetfiles.client.retry import RetryPolicy

#: Files up to this size are received in memory and written once, on the event loop: for small
#: files the state record and the extra opens would cost more than the transfer, and there is
#: nothing worth resuming.
IN_MEMORY_MAX = 1024 * 1024
#: Chunks smaller than this are written and hashed on the event loop; a thread hop costs more.
INLINE_BELOW = 256 * 1024
#: Chunks of one download being written and hashed while more arrive.
CHUNKS_IN_FLIGHT = 4
#: Default size from which a file is fetched as several ranged streams (when ``streams`` > 1).
MULTI_STREAM_MIN = 64 * 1024 * 1024

RANGED_WRITES = hasattr(os, "pwrite") and hasattr(os, "pread")

__all__ = ["MULTI_STREAM_MIN", "Fetcher"]


class _PartialFile:
    """The ``.part`` file, its state record, and the running hash of the bytes in it."""

    def __init__(self, directory: Path, key: str, version: str) -> None:
        self.path = directory / f"{key}.part"
        self.state_path = directory / f"{key}.json"
        self.version = version
        self.etag: str | None = None
        self.digest = hashlib.sha256()
        self.length = 0
        self.received = 0  # bytes that crossed the network in this run, over every attempt
        self.handle: BinaryIO | None = None

    def open(self) -> None:
        """Reuse bytes a previous attempt or run left, if they belong to this version of the file."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        state: dict[str, Any] = {}
        with contextlib.suppress(FileNotFoundError, ValueError):
            state = json.loads(self.state_path.read_text())
        if state.get("version") == self.version and "ranges" not in state and self.path.exists():
            self.etag = state.get("etag")
            self.handle = self.path.open("r+b")
            while block := self.handle.read(CHUNK):  # the hash must cover the whole file
                self.digest.update(block)
                self.length += len(block)
        else:
            self.handle = self.path.open("w+b")
            self._save_state()

    def restart(self) -> int:
        """Drop the bytes on disk; returns how many, so progress can be taken back."""
        assert self.handle is not None
        self.handle.seek(0)
        self.handle.truncate()
        self.digest = hashlib.sha256()
        dropped, self.length = self.length, 0
        return dropped

    def remember(self, etag: str | None) -> None:
        if etag != self.etag:
            self.etag = etag
            self._save_state()

    def _save_state(self) -> None:
        self.state_path.write_text(json.dumps({"version": self.version, "etag": self.etag}))

    def append(self, chunk: bytes) -> None:
        self.write(chunk)
        self.digest.update(chunk)
        self.length += len(chunk)

    def write(self, chunk: bytes) -> None:
        assert self.handle is not None
        self.handle.write(chunk)

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None

    def discard(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)
        self.state_path.unlink(missing_ok=True)

    def commit(self, final: Path) -> None:
        """Atomic rename into place; the state record goes after, so a crash between is harmless."""
        self.close()
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.path, final)
        self.state_path.unlink(missing_ok=True)


class _MemoryPartial(_PartialFile):
    """A small file's bytes, kept in memory until they are whole and verified."""

    def __init__(self, directory: Path, key: str, version: str) -> None:
        super().__init__(directory, key, version)
        self.buffer = bytearray()

    def open(self) -> None:
        pass

    def restart(self) -> int:
        self.buffer.clear()
        self.digest = hashlib.sha256()
        dropped, self.length = self.length, 0
        return dropped

    def remember(self, etag: str | None) -> None:
        self.etag = etag

    def write(self, chunk: bytes) -> None:
        self.buffer += chunk

    def close(self) -> None:
        pass

    def discard(self) -> None:
        self.buffer.clear()

    def commit(self, final: Path) -> None:
        """Written under a temporary name, then renamed: never half a file at ``final``."""
        _making_folder(self.path, lambda: self.path.write_bytes(self.buffer))
        _making_folder(final, lambda: os.replace(self.path, final))


def _making_folder(path: Path, act: Callable[[], object]) -> None:
    """``act`` on ``path``, making its folder only when ``act`` finds it missing: asking first
    cost a failed ``mkdir`` per folder per file, most of a small file's commit on the event loop."""
    try:
        act()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        act()


class Fetcher:
    """Fetches files over one shared aiohttp session (one connection pool for every download).

    ``streams`` > 1 fetches files of at least ``multi_stream_min`` bytes as that many ranged
    streams; a server that does not honour ``Range`` gets one stream.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        retry: RetryPolicy | None = None,
        *,
        streams: int = 1,
        multi_stream_min: int = MULTI_STREAM_MIN,
    ) -> None:
        self.session = session
        self.retry = retry or RetryPolicy()
        self.streams = streams
        self.multi_stream_min = multi_stream_min

    async def fetch(
        self,
        remote: RemoteFile,
        target: Target,
        final: Path,
        partial_dir: Path,
        resolve: Resolve,
        progress: Progress,
    ) -> Fetched:
        """Fetch ``remote`` to ``final``; raises Gone or Failed (after retries), never half a file."""
        # positional writes are POSIX (os.pwrite); elsewhere every file is one stream
        if self.streams > 1 and remote.length >= max(self.multi_stream_min, 2 * CHUNK) and RANGED_WRITES:
            ranged = RangedDownload(
                self.session, self.retry, self.streams, remote, target, final, partial_dir, resolve, progress
            )
            try:
                return await ranged.run()
            except RangesUnsupported:
                target = ranged.target  # the latest URL; continue as one stream
        return await self._fetch_one_stream(remote, target, final, partial_dir, resolve, progress)

    async def _fetch_one_stream(
        self, remote: RemoteFile, target: Target, final: Path, partial_dir: Path, resolve: Resolve,
        progress: Progress,
    ) -> Fetched:  # fmt: skip
        key = partial_key(remote.id)
        if remote.length <= IN_MEMORY_MAX:
            partial: _PartialFile = _MemoryPartial(partial_dir, key, remote.version)
        else:
            partial = _PartialFile(partial_dir, key, remote.version)
            await asyncio.to_thread(partial.open)
        if partial.length > remote.length:
            partial.restart()
        if partial.length:
            progress(partial.length)  # bytes already on disk count as done
        try:
            failures = refusals = 0
            expected_sha256 = remote.sha256
            while True:
                if target.expired():
                    target = await resolve()
                before = partial.length
                try:
                    digest = await self._attempt(remote, target, partial, progress)
                    expected_sha256 = expected_sha256 or digest
                    break
                except Refused as exc:
                    refusals += 1
                    if refusals > self.retry.refusals:
                        raise Failed(f"{exc} (after {self.retry.refusals} fresh URLs)") from None
                    target = await resolve()
                except Retryable as exc:
                    failures = 0 if partial.length > before else failures + 1
                    if self.retry.gives_up(failures):
                        raise Failed(f"{exc} (gave up after {failures} attempts)") from None
                    await asyncio.sleep(self.retry.pause(failures, exc.wait))
            verify(partial.length, partial.digest.hexdigest(), remote, expected_sha256, partial.discard)
            if isinstance(partial, _MemoryPartial):
                # A few syscalls for a small file: cheaper on the event loop than a thread hop, whose
                # GIL handoffs stall the loop for every other transfer (2,000 x 16 KiB: 2.9 s
                # inline, 3.5 s in a thread, median of 4 runs on this 2-core machine).
                partial.commit(final)
            else:
                await asyncio.to_thread(partial.commit, final)
            return Fetched(partial.digest.hexdigest(), partial.received)
        except BaseException:
            partial.close()
            raise

    async def _attempt(
        self, remote: RemoteFile, target: Target, partial: _PartialFile, progress: Progress
    ) -> str | None:
        """One GET; returns the sha256 the response declared (``Repr-Digest``), if any."""
        headers = dict(target.headers)
        if partial.length:
            if partial.length >= remote.length:
                headers["Range"] = f"bytes={remote.length - 1}-"  # confirm the last byte is still ours
            else:
                headers["Range"] = f"bytes={partial.length}-"
            if partial.etag:
                headers["If-Range"] = partial.etag
        try:
            # The bytes as stored: lengths, ranges and digests are of the identity encoding.
            headers["Accept-Encoding"] = "identity"
            async with self.session.get(target.url, headers=headers, auto_decompress=False) as response:
                declared = self._check_status(response, partial, remote, progress)
                if response.status == 206 and partial.length >= remote.length:
                    return declared  # nothing left to fetch: the bytes on disk are complete
                await self._receive(response, partial, progress)
                if partial.length < remote.length:
                    raise Retryable(f"truncated body at {partial.length} of {remote.length} bytes", wait=0)
                return declared
        except TRANSIENT as exc:
            raise Retryable(f"connection failed: {type(exc).__name__}: {exc}") from None

    def _check_status(
        self, response: aiohttp.ClientResponse, partial: _PartialFile, remote: RemoteFile, progress: Progress
    ) -> str | None:
        status = response.status
        if status == 416:
            progress(-partial.restart())  # our offset is past the server's end: its file changed
            raise Retryable("HTTP 416: the bytes on disk no longer match", wait=0)
        classify_status(response)
        if status == 200:
            if partial.length:
                progress(-partial.restart())  # If-Range did not match, or no Range support: whole file
        else:
            start = content_range_start(response.headers.get("Content-Range"))
            if start != partial.length and not (
                partial.length >= remote.length and start == remote.length - 1
            ):
                progress(-partial.restart())
                raise Retryable(f"unexpected Content-Range {response.headers.get('Content-Range')}", wait=0)
        partial.remember(response.headers.get("ETag"))
        return repr_digest_sha256(response.headers.get("Repr-Digest"))

    async def _receive(
        self, response: aiohttp.ClientResponse, partial: _PartialFile, progress: Progress
    ) -> None:
        """Stream the body to disk.

        Large chunks are written by one thread and hashed by another while the next chunks
        arrive (both release the GIL), a few chunks deep: on a 2-core machine this is what keeps
        sha256 verification from halving the rate. Each thread keeps the chunks in order.
        """
        loop = asyncio.get_running_loop()
        pending: deque[asyncio.Future[None]] = deque()
        writer = hasher = None
        try:
            async for chunk in response.content.iter_chunked(CHUNK):
                partial.received += len(chunk)
                if len(chunk) < INLINE_BELOW and not pending:
                    partial.append(chunk)
                else:
                    if writer is None or hasher is None:
                        writer = ThreadPoolExecutor(1, thread_name_prefix="assetfiles-write")
                        hasher = ThreadPoolExecutor(1, thread_name_prefix="assetfiles-hash")
                    pending.append(loop.run_in_executor(writer, partial.write, chunk))
                    pending.append(loop.run_in_executor(hasher, partial.digest.update, chunk))
                    partial.length += len(chunk)
                    while len(pending) > 2 * CHUNKS_IN_FLIGHT:
                        await pending.popleft()
                progress(len(chunk))
            await asyncio.gather(*pending)  # a failed write or hash is this attempt's error
            pending.clear()
        finally:
            if pending:  # the body failed: let the threads finish, without masking that error
                await asyncio.gather(*pending, return_exceptions=True)
            for executor in (writer, hasher):
                if executor is not None:
                    executor.shutdown(wait=True)
