"""Uploading local files as content of an asset: through tus when the server offers it
(:mod:`.resumable`, resumable), else a mutation for a signed URL and a streamed PUT."""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import anyio

from assetfiles.client.graphql import GraphQLClient, GraphQLClientError
from assetfiles.client.resumable import (
    CredentialRefused,
    Refused,
    ResumableUploader,
    Unreachable,
    file_to_send,
)

CHUNK = 1024 * 1024

CREATE_UPLOAD = """
mutation CreateContentUpload($input: ContentUploadInput!) {
  createContentUpload(input: $input) { id uploadUrl method expiresAt }
}
"""

Progress = Callable[[int], None]


@dataclass(frozen=True)
class UploadResult:
    """One file's upload: the content id it became, or why it failed (errors are returned)."""

    path: Path
    content_id: str | None
    error: str | None = None


def _sha256(path: Path, progress: Progress) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            progress(len(chunk))
    return digest.hexdigest()


async def _chunks(path: Path, progress: Progress) -> AsyncIterator[bytes]:
    async with await anyio.open_file(path, "rb") as handle:
        while chunk := await handle.read(CHUNK):
            progress(len(chunk))
            yield chunk


async def upload_file(
    session: aiohttp.ClientSession,
    client: GraphQLClient,
    asset_id: str,
    path: Path,
    *,
    tags: dict[str, str],
    hashing: Progress,
    sending: Progress,
    resumable: ResumableUploader | None = None,
) -> UploadResult:
    """Upload one file (through ``resumable`` when given); errors are returned, not raised, so one
    bad file does not stop the rest."""
    try:
        length = (await anyio.Path(path).stat()).st_size
        sha256 = await anyio.to_thread.run_sync(_sha256, path, hashing)
        if resumable is not None:
            item = file_to_send(path, asset_id, sha256, tags)
            return UploadResult(path, await resumable.upload(item, sending))
        variables: dict[str, Any] = {
            "input": {
                "name": path.name,
                "contentType": mimetypes.guess_type(path.name)[0] or "application/octet-stream",
                "length": length,
                "sha256": sha256,
                "associations": [{"type": "asset", "id": asset_id}],
                "tags": [{"name": name, "value": value} for name, value in tags.items()],
            }
        }
        ticket = (await client.execute(CREATE_UPLOAD, variables))["createContentUpload"]
        headers = {"Content-Length": str(length), "Content-Type": "application/octet-stream"}
        async with session.put(ticket["uploadUrl"], data=_chunks(path, sending), headers=headers) as response:
            body = await response.json(content_type=None)
            if response.status != 201:
                message = (body or {}).get("error", {}).get("message", f"HTTP {response.status}")
                return UploadResult(path, None, message)
        return UploadResult(path, ticket["id"])
    except GraphQLClientError as exc:
        if exc.status == 401 or exc.code in ("UNAUTHENTICATED", "FORBIDDEN"):
            raise  # the token may not upload at all: every file would fail alike
        return UploadResult(path, None, str(exc))
    except CredentialRefused:
        raise
    except (OSError, aiohttp.ClientError, Refused, Unreachable) as exc:
        return UploadResult(path, None, str(exc) or type(exc).__name__)
