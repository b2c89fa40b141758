"""One large file as several ranged streams into one preallocated file, resumable piece by piece.

Each of ``streams`` workers carves the next piece off the front of what nobody has yet, GETs
it (one request per piece while nothing fails), writes at its offset with ``pwrite``, then
carves the next. A piece's size follows the link (:meth:`RangedDownload._piece_size`): about
a hundred round trips' worth of one stream's rate, so a request's round trip costs about 1%
on a slow, distant link, while on a fast near one pieces stay small and the hash frontier
close behind; towards the end, pieces shrink so that the streams finish together. The state record
beside the ``.part`` file lists every piece with how far it got; it is rewritten about once a
second and when the download stops, so a run killed at any moment resumes each piece from its
recorded offset (at most a second of bytes is fetched again).

Verification without a second pass over the file: sha256 has to see the bytes in order, so a
hasher thread follows the contiguous prefix that has arrived. Chunks that land exactly at that
frontier are hashed from memory as they arrive; a piece that finished ahead of the frontier is
read back (from the page cache, while the other streams still download) once the frontier
reaches it. Since pieces are taken in order, the frontier trails the download by a few pieces,
and only those are read after the last byte arrives.

A server that ignores ``Range`` (a 200 answer to the first request) gets one stream instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from assetfiles.client.errors import Failed, Refused, Retryable, first_of
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

#: How often the ranges' progress is written to the state record.
SAVE_SECONDS = 1.0
#: A range is split for an idle stream only when both halves would be at least this long.
MIN_STEAL = 2 * 1024 * 1024
#: Hash work queued behind the frontier before a stream waits for the hasher (bounds memory).
HASH_QUEUE = 16


class RangesUnsupported(Exception):
    """The server answered a ranged request with the whole file: fall back to one stream."""


@dataclass
class _Range:
    start: int
    end: int  # exclusive
    done: int  # next byte to fetch; ``end`` when complete

    @property
    def complete(self) -> bool:
        return self.done >= self.end


class RangedDownload:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        retry: RetryPolicy,
        streams: int,
        remote: RemoteFile,
        target: Target,
        final: Path,
        partial_dir: Path,
        resolve: Resolve,
        progress: Progress,
    ) -> None:
        self.session = session
        self.retry = retry
        self.streams = streams
        self.remote = remote
        self.target = target
        self.target_generation = 0
        self.final = final
        self.resolve = resolve
        self.progress = progress
        key = partial_key(remote.id)
        self.path = partial_dir / f"{key}.part"
        self.state_path = partial_dir / f"{key}.json"
        self.etag: str | None = None
        self.ranges: list[_Range] = []
        self.received = 0
        self.declared_sha256: str | None = None
        self.fd = -1
        self.refusals = 0
        self.rate: float | None = None  # bytes per second of one stream
        self.round_trip: float | None = None  # seconds from a request to its answer
        self._resolving = asyncio.Lock()
        # the in-order hash
        self.digest = hashlib.sha256()
        self.frontier = 0
        self._hasher = ThreadPoolExecutor(1, thread_name_prefix="assetfiles-hash")
        self._hash_queue: list[asyncio.Future[None]] = []

    # -- state --------------------------------------------------------------------------------

    def _open(self) -> int:
        """Reuse the ranges a previous run recorded for this version, or preallocate afresh."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        state: dict[str, Any] = {}
        with contextlib.suppress(FileNotFoundError, ValueError):
            state = json.loads(self.state_path.read_text())
        length = self.remote.length
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            size = -1
        recorded = state.get("ranges") or []
        if state.get("version") == self.remote.version and size == length and _valid(recorded, length):
            self.etag = state.get("etag")
            self.ranges = [_Range(*item) for item in recorded]
            self.fd = os.open(self.path, os.O_RDWR)
            return sum(item.done - item.start for item in self.ranges)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        _preallocate(self.fd, length)
        self.ranges = [_Range(0, length, 0)]  # carved into pieces as the streams take them
        self._save()
        return 0

    def _state(self) -> dict[str, Any]:
        """A snapshot of the state, taken on the event loop (where the ranges change)."""
        return {
            "version": self.remote.version,
            "etag": self.etag,
            "ranges": [[item.start, item.end, item.done] for item in self.ranges],
        }

    def _save(self, document: dict[str, Any] | None = None) -> None:
        document = document or self._state()
        temporary = self.state_path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(document))
        os.replace(temporary, self.state_path)

    def _discard(self) -> None:
        self._close()
        self.path.unlink(missing_ok=True)
        self.state_path.unlink(missing_ok=True)

    def _close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    # -- the run ------------------------------------------------------------------------------

    async def run(self) -> Fetched:
        """Fetch every range, verify, rename into place; raises RangesUnsupported, Failed or Gone."""
        already = await asyncio.to_thread(self._open)
        if already:
            self.progress(already)
        saver = asyncio.create_task(self._save_periodically())
        try:
            await self._download()
        except BaseException as exc:
            await self._stop(saver)
            if first_of(exc, RangesUnsupported) is not None:
                await asyncio.to_thread(self._discard)
                self.progress(-sum(item.done - item.start for item in self.ranges))
                raise RangesUnsupported() from None
            await asyncio.to_thread(self._save_and_close, self._state())
            for kind in (Failed, OSError):  # a file's failure, or a write error: as one stream raises them
                found = first_of(exc, kind)
                if found is not None:
                    raise found from None
            raise
        await self._stop(saver)
        actual = self.digest.hexdigest()
        expected = self.remote.sha256 or self.declared_sha256
        await asyncio.to_thread(self._finish, actual, expected)
        return Fetched(actual, self.received)

    async def _download(self) -> None:
        self._advance_hash()
        pending = deque(item for item in self.ranges if not item.complete)
        if pending:
            # Every stream starts at once (a probe first would cost a round trip on a slow link); a
            # server without Range support answers each with 200, and the fallback cancels them all.
            async with asyncio.TaskGroup() as group:
                for _ in range(self.streams):  # each carves its first piece off what is pending
                    group.create_task(self._worker(pending))
        await asyncio.gather(*self._hash_queue)
        await asyncio.get_running_loop().run_in_executor(self._hasher, self._hash_rest)

    async def _worker(self, pending: deque[_Range]) -> None:
        """One stream: take the lowest piece nobody has, fetch it, repeat (pieces finish in order,
        so the hash frontier follows the download instead of waiting for its end). With none
        left, take the second half of the largest remainder another stream is still fetching, so
        that every stream works until the end instead of idling while one finishes a piece."""
        while True:
            item = self._carve(pending) if pending else self._steal()
            if item is None:
                return
            await self._stream(item)

    def _carve(self, pending: deque[_Range]) -> _Range:
        """The next piece: the lowest range nobody has, cut to the piece size if it was never started
        (the rest stays first in line)."""
        item = pending.popleft()
        size = self._piece_size(sum(rest.end - rest.done for rest in pending) + item.end - item.done)
        if item.done == item.start and item.end - item.start >= size + MIN_PIECE:
            rest = _Range(item.start + size, item.end, item.start + size)
            item.end = rest.start
            self.ranges.insert(self.ranges.index(item) + 1, rest)
            pending.appendleft(rest)
        return item

    def _piece_size(self, unclaimed: int) -> int:
        """About PIECE_ROUND_TRIPS round trips of one stream's measured rate (MIN_PIECE until there
        is a measure), and no more than an equal share of what is left, so streams end together."""
        size = MIN_PIECE
        if self.rate is not None and self.round_trip is not None:
            size = int(self.rate * max(self.round_trip, 0.001) * PIECE_ROUND_TRIPS)
        size = min(size, MAX_PIECE, unclaimed // self.streams)
        return max(MIN_PIECE, size // CHUNK * CHUNK)

    def _measure(self, round_trip: float, received: int, seconds: float) -> None:
        """Fold one response's time to first byte and its rate into running estimates."""
        self.round_trip = round_trip if self.round_trip is None else 0.7 * self.round_trip + 0.3 * round_trip
        if received >= CHUNK and seconds > 0:
            rate = received / seconds
            self.rate = rate if self.rate is None else 0.7 * self.rate + 0.3 * rate

    def _steal(self) -> _Range | None:
        busy = [item for item in self.ranges if not item.complete]  # all taken: pending is empty
        victim = max(busy, key=lambda item: item.end - item.done, default=None)
        if victim is None or victim.end - victim.done < 2 * MIN_STEAL:
            return None
        split = victim.done + (victim.end - victim.done) // 2 // CHUNK * CHUNK
        stolen = _Range(split, victim.end, split)
        victim.end = split  # its stream stops there (its request asked for more; the rest is dropped)
        self.ranges.insert(self.ranges.index(victim) + 1, stolen)
        return stolen

    def _finish(self, actual: str, expected: str | None) -> None:
        verify(self.remote.length, actual, self.remote, expected, self._discard)
        self._close()
        self.final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.path, self.final)
        self.state_path.unlink(missing_ok=True)

    def _save_and_close(self, document: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):
            self._save(document)
        self._close()

    async def _stop(self, saver: asyncio.Task[None]) -> None:
        saver.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await saver
        await asyncio.gather(*self._hash_queue, return_exceptions=True)
        self._hasher.shutdown(wait=True)

    async def _save_periodically(self) -> None:
        while True:
            await asyncio.sleep(SAVE_SECONDS)
            await asyncio.to_thread(self._save, self._state())

    # -- one stream ---------------------------------------------------------------------------

    async def _stream(self, item: _Range) -> None:
        """Fetch ``item`` to its end, retrying on its own."""
        failures = 0
        while not item.complete:
            target, generation = self.target, self.target_generation
            if target.expired():
                await self._fresh_target(generation)
                continue
            before = item.done
            try:
                await self._attempt(item, target)
            except Refused as exc:
                self.refusals += 1
                if self.refusals > self.retry.refusals:
                    raise Failed(f"{exc} (after {self.retry.refusals} fresh URLs)") from None
                await self._fresh_target(generation)
            except Retryable as exc:
                failures = 0 if item.done > before else failures + 1
                if self.retry.gives_up(failures):
                    raise Failed(f"{exc} (gave up after {failures} attempts)") from None
                await asyncio.sleep(self.retry.pause(failures, exc.wait))

    async def _fresh_target(self, generation: int) -> None:
        """One resolution for every stream that found the same URL refused or expired."""
        async with self._resolving:
            if self.target_generation == generation:
                self.target = await self.resolve()
                self.target_generation += 1

    async def _attempt(self, item: _Range, target: Target) -> None:
        headers = dict(target.headers)
        headers["Range"] = f"bytes={item.done}-{item.end - 1}"
        headers["Accept-Encoding"] = "identity"
        if self.etag:
            headers["If-Range"] = self.etag
        session = self.session
        asked = time.monotonic()
        try:
            async with session.get(target.url, headers=headers, auto_decompress=False) as response:
                answered = time.monotonic()
                if response.status == 416:
                    raise RangesUnsupported()  # the file changed under us: start over, as one stream
                classify_status(response)
                if response.status == 200:
                    raise RangesUnsupported()  # no Range support, or If-Range found another file
                if content_range_start(response.headers.get("Content-Range")) != item.done:
                    raise Retryable(f"unexpected Content-Range {response.headers.get('Content-Range')}")
                etag = response.headers.get("ETag")
                if etag and not self.etag:
                    self.etag = etag
                self.declared_sha256 = self.declared_sha256 or repr_digest_sha256(
                    response.headers.get("Repr-Digest")
                )
                before = item.done
                await self._receive(item, response)
                self._measure(answered - asked, item.done - before, time.monotonic() - answered)
        except TRANSIENT as exc:
            raise Retryable(f"connection failed: {type(exc).__name__}: {exc}") from None
        if not item.complete:
            raise Retryable(f"truncated range at {item.done} of {item.end}", wait=0)

    async def _receive(self, item: _Range, response: aiohttp.ClientResponse) -> None:
        loop = asyncio.get_running_loop()
        async for chunk in response.content.iter_chunked(CHUNK):
            chunk = chunk[: item.end - item.done]  # a server sending past the range is cut off
            if not chunk:
                break
            offset = item.done
            self.received += len(chunk)
            await loop.run_in_executor(None, os.pwrite, self.fd, chunk, offset)
            # Another stream may have taken the end of this range meanwhile: bytes written past the
            # new end are the same bytes it fetches, but they are its to count and hash.
            chunk = chunk[: max(0, item.end - offset)]
            if not chunk:
                break
            item.done += len(chunk)
            self.progress(len(chunk))
            if offset == self.frontier:
                self._hash(self.digest.update, chunk)
                self.frontier += len(chunk)
            self._advance_hash()
            while len(self._hash_queue) > HASH_QUEUE:
                await self._hash_queue.pop(0)

    # -- the in-order hash --------------------------------------------------------------------

    def _hash(self, function: Any, *args: Any) -> None:
        loop = asyncio.get_running_loop()
        self._hash_queue.append(loop.run_in_executor(self._hasher, function, *args))

    def _advance_hash(self) -> None:
        """Queue the read-back of every byte written ahead of the frontier that is now contiguous."""
        for item in self.ranges:
            if item.start <= self.frontier < item.end and item.done > self.frontier:
                self._hash(self._read_into_hash, self.frontier, item.done)
                self.frontier = item.done

    def _read_into_hash(self, start: int, end: int) -> None:
        position = start
        while position < end:
            block = os.pread(self.fd, min(CHUNK, end - position), position)
            if not block:
                raise Failed(f"the partial file is shorter than recorded at {position}")
            self.digest.update(block)
            position += len(block)

    def _hash_rest(self) -> None:
        """After the last byte: the part that completed ahead of the frontier."""
        if self.frontier < self.remote.length:
            self._read_into_hash(self.frontier, self.remote.length)
            self.frontier = self.remote.length


#: Bounds of a piece, and its size in round trips of one stream's rate (see _piece_size).
MIN_PIECE = 4 * 1024 * 1024
MAX_PIECE = 256 * 1024 * 1024
PIECE_ROUND_TRIPS = 100


def _valid(recorded: Any, length: int) -> bool:
    if not isinstance(recorded, list) or not recorded:
        return False
    position = 0
    for item in recorded:
        if not (isinstance(item, list) and len(item) == 3 and all(isinstance(x, int) for x in item)):
            return False
        start, end, done = item
        if start != position or not start <= done <= end:
            return False
        position = end
    return position == length


def _preallocate(fd: int, length: int) -> None:
    """Reserve the space now, so a full disk fails at the start and the file is not fragmented."""
    if hasattr(os, "posix_fallocate"):
        try:
            os.posix_fallocate(fd, 0, length)
            return
        except OSError as exc:
            if exc.errno not in (95, 22):  # EOPNOTSUPP, EINVAL: filesystems without fallocate
                raise
    os.ftruncate(fd, length)


__all__ = ["RangedDownload", "RangesUnsupported"]
