"""Uploading through tus (``/files/``), resumable across dropped connections and killed processes.

A file is hashed first (its sha256 is declared, so the server verifies the whole), then created
with its metadata and sent in chunks, each with its own ``Upload-Checksum``: a chunk damaged on
the way is refused (460) and sent again, never stored. A file that fits in one chunk goes in the
creation request itself (creation-with-upload). Where each upload stands is kept in a small
state file (``$XDG_STATE_HOME/assetfiles/uploads``, by default ``~/.local/state/...``) keyed by
the server, the asset, the file's name and its sha256: a new process uploading the same file asks
the server for the offset (HEAD) and sends only the rest.

Failures that a later try may fix (a dropped connection, 5xx, 423 another request still holds the
upload, 429) are retried with the client's retry policy, counting again after every chunk that
got through; a refusal (4xx) ends that file with the server's message.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import mimetypes
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import anyio

from assetfiles.client.retry import RetryPolicy, retry_after_seconds

TUS_VERSION = "1.0.0"
#: bytes per PATCH: what a dropped connection can cost at most, and what is held in memory
DEFAULT_CHUNK_BYTES = 8 * 1024 * 1024
RETRYABLE = {408, 409, 423, 429, 500, 502, 503, 504}

Progress = Callable[[int], None]


def state_directory() -> Path:
    configured = os.environ.get("ASSETFILES_STATE_DIR")
    if configured:
        return Path(configured) / "uploads"
    base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return Path(base) / "assetfiles" / "uploads"


class Refused(Exception):
    """The server refused the upload for a reason no retry fixes."""


class CredentialRefused(Refused):
    """The token may not upload here at all (401, 403 at creation): every file would fail alike."""


class Unreachable(Exception):
    """No progress after the retry policy's attempts."""


@dataclass(frozen=True)
class FileToSend:
    path: Path
    asset: str
    length: int
    sha256: str
    tags: dict[str, str]

    def metadata(self) -> str:
        values = {
            "filename": self.path.name,
            "asset": self.asset,
            "filetype": mimetypes.guess_type(self.path.name)[0] or "application/octet-stream",
            "sha256": self.sha256,
        }
        if self.tags:
            values["tags"] = json.dumps(self.tags)
        return ",".join(f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in values.items())


class ResumableUploader:
    """tus uploads to one server with one token."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        token: str,
        *,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        retry: RetryPolicy | None = None,
        state_dir: Path | None = None,
    ) -> None:
        self.session = session
        self.url = url.rstrip("/")
        self.headers = {"Tus-Resumable": TUS_VERSION, "Authorization": f"Automation {token}"}
        self.chunk_bytes = chunk_bytes
        self.retry = retry or RetryPolicy()
        self.state_dir = state_dir or state_directory()

    async def offered(self) -> bool:
        """Whether the server speaks tus 1.0.0 with what we use (an older server does not)."""
        try:
            async with self.session.options(f"{self.url}/files/") as response:
                versions = response.headers.get("Tus-Version", "")
                extensions = response.headers.get("Tus-Extension", "")
                return (
                    response.status in (200, 204)
                    and TUS_VERSION in versions.split(",")
                    and {"creation", "checksum"} <= set(extensions.split(","))
                )
        except aiohttp.ClientError:
            return False

    # -- state -----------------------------------------------------------------------------------

    def _state_file(self, item: FileToSend) -> Path:
        key = f"{self.url}\n{item.asset}\n{item.path.name}\n{item.length}\n{item.sha256}"
        return self.state_dir / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".json")

    def _remember(self, item: FileToSend, location: str) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        target = self._state_file(item)
        temporary = target.with_suffix(".tmp")
        temporary.write_text(
            json.dumps({"location": location, "path": str(item.path), "length": item.length})
        )
        os.replace(temporary, target)

    def _recalled(self, item: FileToSend) -> str | None:
        try:
            state = json.loads(self._state_file(item).read_text())
        except (OSError, ValueError):
            return None
        location = state.get("location") if isinstance(state, dict) else None
        return location if isinstance(location, str) and location.startswith(self.url) else None

    def _forget(self, item: FileToSend) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._state_file(item).unlink()

    # -- one file ----------------------------------------------------------------------------------

    async def upload(self, item: FileToSend, sending: Progress) -> str:
        """Send the file (or what the server lacks of it); returns the content id."""
        location = self._recalled(item)
        offset = 0
        resync = location is not None  # ask the server where a remembered upload stands
        failures = 0
        while True:
            try:
                done = None
                if resync and location is not None:
                    known = await self._offset(location, item)
                    resync = False
                    if isinstance(known, str):
                        done = known  # completed before the last try could say so
                    elif known is None:  # expired, terminated, or not this file's: begin again
                        self._forget(item)
                        sending(-offset)
                        location, offset = None, 0
                    else:
                        sending(known - offset)
                        offset = known
                if done is None and location is None:
                    location, offset, done = await self._create(item, sending)
                elif done is None and location is not None:
                    offset, done = await self._patch(location, item, offset, sending)
                if done is not None:
                    self._forget(item)
                    return done
                failures = 0  # a chunk got through: count failures again from none
            except _Retry as exc:
                failures += 1
                if self.retry.gives_up(failures):
                    raise Unreachable(str(exc)) from None
                await anyio.sleep(self.retry.wait(failures, exc.retry_after))
                resync = True

    async def _offset(self, location: str, item: FileToSend) -> int | str | None:
        """HEAD: the server's offset, the content id when complete, None when the upload is gone."""
        try:
            async with self.session.head(location, headers=self.headers) as response:
                if response.status in (403, 404, 410):
                    return None
                if response.status != 200:
                    raise _Retry(f"HEAD {location}: HTTP {response.status}", response)
                if response.headers.get("Upload-Length") != str(item.length):
                    return None  # another file's upload: begin again
                if "Upload-Content-Id" in response.headers:
                    return response.headers["Upload-Content-Id"]
                return int(response.headers["Upload-Offset"])
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _Retry(f"HEAD {location}: {exc or type(exc).__name__}") from None

    def _chunk(self, item: FileToSend, offset: int) -> bytes:
        with item.path.open("rb") as handle:
            handle.seek(offset)
            return handle.read(self.chunk_bytes)

    def _checksum(self, chunk: bytes) -> str:
        return "sha256 " + base64.b64encode(hashlib.sha256(chunk).digest()).decode()

    async def _create(self, item: FileToSend, sending: Progress) -> tuple[str, int, str | None]:
        headers = {**self.headers, "Upload-Length": str(item.length), "Upload-Metadata": item.metadata()}
        body = b""
        if 0 < item.length <= self.chunk_bytes:  # creation-with-upload: one request in all
            body = await anyio.to_thread.run_sync(self._chunk, item, 0)
            headers |= {
                "Content-Type": "application/offset+octet-stream",
                "Upload-Checksum": self._checksum(body),
            }
        try:
            async with self.session.post(f"{self.url}/files/", data=body, headers=headers) as response:
                text = await response.text()
                if response.status in (401, 403):
                    raise CredentialRefused(text.strip() or f"HTTP {response.status}")
                if response.status != 201:
                    _refuse_or_retry(response, text)
                location = response.headers["Location"]
                offset = int(response.headers.get("Upload-Offset", "0"))
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _Retry(f"POST /files/: {exc or type(exc).__name__}") from None
        if offset:
            sending(offset)
        if "Upload-Content-Id" in response.headers:
            return location, offset, response.headers["Upload-Content-Id"]
        self._remember(item, location)
        return location, offset, None

    async def _patch(
        self, location: str, item: FileToSend, offset: int, sending: Progress
    ) -> tuple[int, str | None]:
        chunk = await anyio.to_thread.run_sync(self._chunk, item, offset)
        headers = {
            **self.headers,
            "Content-Type": "application/offset+octet-stream",
            "Upload-Offset": str(offset),
            "Upload-Checksum": self._checksum(chunk),
        }
        try:
            async with self.session.patch(location, data=chunk, headers=headers) as response:
                text = await response.text()
                if response.status != 204:
                    if response.status == 460:
                        raise _Retry(f"PATCH {location}: the chunk arrived damaged (460)", response)
                    _refuse_or_retry(response, text)
                new_offset = int(response.headers["Upload-Offset"])
                done = response.headers.get("Upload-Content-Id")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _Retry(f"PATCH {location}: {exc or type(exc).__name__}") from None
        sending(new_offset - offset)
        return new_offset, done


class _Retry(Exception):
    def __init__(self, message: str, response: aiohttp.ClientResponse | None = None) -> None:
        super().__init__(message)
        self.retry_after = (
            retry_after_seconds(response.headers.get("Retry-After")) if response is not None else None
        )


def _refuse_or_retry(response: aiohttp.ClientResponse, text: str) -> None:
    message = text.strip() or f"HTTP {response.status}"
    if response.status in RETRYABLE:
        raise _Retry(f"HTTP {response.status}: {message}", response)
    raise Refused(message)


def file_to_send(path: Path, asset: str, sha256: str, tags: dict[str, str]) -> FileToSend:
    return FileToSend(path, asset, path.stat().st_size, sha256, dict(tags))
