"""Signed transfer URLs: downloads (Range, If-Range, ETag, If-None-Match, Repr-Digest) and uploads.

No Authorization header is read here: the URL's signature is the credential, bound to one
content (or pending upload), one organization and an expiry.
"""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from email.utils import formatdate
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response

from assetfiles.errors import BadInput, BytesMissing, PayloadTooLarge
from assetfiles.model import Content, StoredFile, content_disposition
from assetfiles.server.bodies import body_chunks
from assetfiles.server.faces import TRANSFER
from assetfiles.server.metrics import upload_in_flight
from assetfiles.server.rendering import content_json
from assetfiles.service.composition import Services

CHUNK = 1024 * 1024


class BlobResponse(FileResponse):
    """Starlette's FileResponse (Range, If-Range, 416 ``bytes */len``) with 1 MiB reads.

    The default 64 KiB reads cap a ranged download at about a quarter of what the disk and
    loopback can do; unranged responses go through the server's sendfile fast path anyway.
    """

    chunk_size = CHUNK


def _etag_matches(header: str, etag: str) -> bool:
    candidates = [part.strip().removeprefix("W/") for part in header.split(",")]
    return "*" in candidates or etag in candidates


@TRANSFER
async def download(request: Request) -> Response:
    services: Services = request.app.state.services
    params = request.query_params
    request.state.operation = "download"
    content, path = await services.contents.open_download(
        request.path_params["content_id"], params.get("org"), params.get("exp"), params.get("sig")
    )
    request.state.org = content.org_id
    if isinstance(path, str):  # object storage: its presigned URL serves the bytes
        return RedirectResponse(path, status_code=302, headers={"Cache-Control": "no-store"})
    return file_response(request, content, path, accel_path(services, content.sha256))


def accel_path(services: Services, sha256: str) -> str | None:
    """Where nginx finds a blob (``X-Accel-Redirect``), when downloads are offloaded to it."""
    prefix = services.settings.accel_redirect_prefix
    return None if prefix is None else prefix + services.contents.blobs.relative_path(sha256)


def file_response(
    request: Request, content: StoredFile | Content, path: Path, accel: str | None = None
) -> Response:
    """The bytes of a content with Range, If-Range, ETag, If-None-Match and Repr-Digest.

    With ``accel`` (see :func:`accel_path`), the caller is already authenticated and nginx
    serves the bytes: it answers Range, If-Range and HEAD itself, from the blob file.
    """
    etag = f'"{content.sha256}"'
    headers = {
        "ETag": etag,
        "Repr-Digest": f"sha-256=:{base64.b64encode(bytes.fromhex(content.sha256)).decode()}:",
        "Last-Modified": formatdate(content.updated_at / 1000, usegmt=True),
        "Cache-Control": "private, no-transform",
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": content_disposition(content.name),
    }
    if accel is not None:
        # nginx keeps Content-Type, Content-Disposition and Cache-Control from this answer and
        # makes its own ETag (the blob is immutable, so it is stable); docs/nginx.md re-adds
        # Repr-Digest from $upstream_http_repr_digest.
        del headers["ETag"]
        headers["X-Accel-Redirect"] = accel
        return _as_stored(Response(status_code=200, headers=headers), content)
    if_none_match = request.headers.get("if-none-match")
    if if_none_match and _etag_matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    try:
        # A metadata lookup, cached by the kernel: cheaper inline than a hop to a worker thread,
        # and handing it to FileResponse saves the one it would make.
        stat_result = os.stat(path)
    except FileNotFoundError:
        raise BytesMissing("the stored bytes of this content are missing") from None
    response = BlobResponse(path, headers=headers, media_type=content.content_type, stat_result=stat_result)
    return _as_stored(response, content)


def _as_stored(response: Response, content: StoredFile | Content) -> Response:
    """The media type exactly as stored: Starlette appends a charset to ``text/*`` types, which
    would claim an encoding nobody declared (a CSV in Latin-1 is not UTF-8)."""
    response.headers["Content-Type"] = content.content_type
    return response


async def request_body(request: Request) -> AsyncIterator[bytes]:
    async for chunk in body_chunks(request):
        yield chunk


def check_declared_length(request: Request, limit: int) -> None:
    """Refuse an oversized body from its Content-Length, before reading a byte of it."""
    header = request.headers.get("content-length")
    if header is None:
        return
    if not header.isdigit():
        raise BadInput("Content-Length: must be a non-negative integer", field="Content-Length")
    if int(header) > limit:
        raise PayloadTooLarge(
            f"Content-Length {header} exceeds the upload limit of {limit} bytes", field="Content-Length"
        )


@TRANSFER
async def upload(request: Request) -> Response:
    """PUT the bytes of a content reserved with ``createContentUpload`` or an EnOS upload URL."""
    services: Services = request.app.state.services
    params = request.query_params
    request.state.operation = "upload"
    check_declared_length(request, services.settings.max_upload_bytes)
    with upload_in_flight():
        content = await services.uploads.receive(
            request.path_params["content_id"],
            params.get("org"),
            params.get("exp"),
            params.get("sig"),
            request_body(request),
        )
    request.state.org = content.org_id
    return JSONResponse(content_json(content), status_code=201)
