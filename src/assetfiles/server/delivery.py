"""Serving a content's bytes, for every face: one :data:`~assetfiles.model.Delivery` in, one response out.

A local file is answered with Range, If-Range, ETag, If-None-Match, Last-Modified and Repr-Digest
(or handed to nginx with ``X-Accel-Redirect`` when downloads are offloaded to it); a redirect
sends the caller to the blob store's own URL; a stream passes the store's bytes through, one
Range applied. A face that answers refusals in its own format (EnOS envelopes) passes
``refuse_range``; the others get plain-text refusals as Starlette makes them.
"""

from __future__ import annotations

import base64
import functools
import os
from collections.abc import Callable
from email.utils import formatdate

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response, StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from assetfiles.errors import BytesMissing
from assetfiles.model import Content, Delivery, LocalFile, Redirect, StoredFile, content_disposition

CHUNK = 1024 * 1024

#: A face's own answer to an unsatisfiable (416) or malformed (400) Range, given the status and
#: the ``Content-Range`` to send with it.
RangeRefusal = Callable[[int, str | None], Response]


class BlobResponse(FileResponse):
    """Starlette's FileResponse (Range, If-Range, 416 ``bytes */len``) with 1 MiB reads.

    The default 64 KiB reads cap a ranged download at about a quarter of what the disk and
    loopback can do; unranged responses go through the server's sendfile fast path anyway.
    """

    chunk_size = CHUNK


async def respond(
    request: Request,
    content: StoredFile | Content,
    delivery: Delivery,
    *,
    accel_prefix: str | None = None,
    refuse_range: RangeRefusal | None = None,
) -> Response:
    """The response that delivers ``content``'s bytes as ``delivery`` says.

    ``accel_prefix`` (settings.accel_redirect_prefix) offloads local files to nginx.
    """
    if isinstance(delivery, Redirect):
        return RedirectResponse(delivery.url, status_code=302, headers={"Cache-Control": "no-store"})
    if isinstance(delivery, LocalFile):
        accel = None if accel_prefix is None else accel_prefix + delivery.relative
        response = _local_file(request, content, delivery, accel)
        if refuse_range is None:
            return response
        return _RangeRefusedInFormat(response, refuse_range)  # type: ignore[return-value]
    stream = await delivery.open(request.headers.get("range"))
    headers = {"Accept-Ranges": "bytes", "ETag": f'"{content.sha256}"',
               "Content-Disposition": content_disposition(content.name)}  # fmt: skip
    if stream.content_range:
        headers["Content-Range"] = stream.content_range
    if stream.status == 416:
        if refuse_range is not None:
            return refuse_range(416, stream.content_range)
        return Response(status_code=416, headers={"Content-Range": stream.content_range or ""})
    if stream.length is not None:
        headers["Content-Length"] = str(stream.length)
    streamed = StreamingResponse(stream.body, status_code=stream.status, headers=headers)
    return _as_stored(streamed, content)


def _local_file(
    request: Request, content: StoredFile | Content, file: LocalFile, accel: str | None
) -> Response:
    """With ``accel`` the caller is already authenticated and nginx serves the bytes: it answers
    Range, If-Range and HEAD itself, from the blob file."""
    stored = _stored_headers(content.sha256, content.name, content.content_type, content.updated_at)
    if accel is not None:
        # nginx keeps Content-Type, Content-Disposition and Cache-Control from this answer and
        # makes its own ETag (the blob is immutable, so it is stable); docs/nginx.md re-adds
        # Repr-Digest from $upstream_http_repr_digest.
        headers = [pair for pair in stored if pair[0] != b"etag"]
        headers += [(b"x-accel-redirect", accel.encode("latin-1")), (b"content-length", b"0")]
        return PreparedResponse(200, headers, b"")
    ranged, if_none_match = _conditions(request.scope["headers"])
    if if_none_match and _etag_matches(if_none_match, f'"{content.sha256}"'):
        return PreparedResponse(304, [pair for pair in stored if pair[0] != b"content-type"], b"")
    if request.method == "GET" and not ranged:
        try:
            # From memory, or a read the kernel answers from its cache: cheaper on the event
            # loop than a hop to a worker thread, or than the server's sendfile path.
            body = file.read_small(content.length)
        except FileNotFoundError:
            raise BytesMissing("the stored bytes of this content are missing") from None
        if body is not None:
            length = (b"content-length", str(len(body)).encode("latin-1"))
            return PreparedResponse(200, [*stored, _ACCEPT_RANGES, length], body)
    try:
        # A metadata lookup, cached by the kernel: cheaper inline than a hop to a worker thread,
        # and handing it to FileResponse saves the one it would make.
        stat_result = os.stat(file.path)
    except FileNotFoundError:
        raise BytesMissing("the stored bytes of this content are missing") from None
    # the stored headers carry the Content-Type as stored, so Starlette adds no charset to it
    return BlobResponse(
        file.path,
        headers={name.decode("latin-1"): value.decode("latin-1") for name, value in stored},
        media_type=content.content_type,
        stat_result=stat_result,
    )


_ACCEPT_RANGES = (b"accept-ranges", b"bytes")


@functools.lru_cache(maxsize=4096)
def _stored_headers(
    sha256: str, name: str, content_type: str, updated_at: int
) -> tuple[tuple[bytes, bytes], ...]:
    """The headers every answer about a stored content carries, rendered once per version of it
    (its digest, name, type and time): formatting the date and the digest and encoding each
    header cost more than the rest of a small download's answer."""
    headers = {
        "etag": f'"{sha256}"',
        "repr-digest": f"sha-256=:{base64.b64encode(bytes.fromhex(sha256)).decode()}:",
        "last-modified": formatdate(updated_at / 1000, usegmt=True),
        "cache-control": "private, no-transform",
        "x-content-type-options": "nosniff",
        "content-disposition": content_disposition(name),
        # exactly as stored: Starlette appends a charset to text/* types (see _as_stored)
        "content-type": content_type,
    }
    return tuple((key.encode("latin-1"), value.encode("latin-1")) for key, value in headers.items())


def _conditions(headers: list[tuple[bytes, bytes]]) -> tuple[bool, str | None]:
    """Whether the request has a Range, and its (first) If-None-Match: one pass over its headers."""
    ranged = False
    if_none_match = None
    for name, value in headers:
        if name == b"range":
            ranged = True
        elif name == b"if-none-match" and if_none_match is None:
            if_none_match = value.decode("latin-1")
    return ranged, if_none_match


class PreparedResponse(Response):
    """A response whose headers are already rendered (lower-case names, latin-1 bytes), sent as
    they are; ``headers`` can still be changed, as on any Starlette response."""

    def __init__(self, status_code: int, raw_headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status_code = status_code
        self.background = None
        self.body = body
        self.raw_headers = raw_headers


def _etag_matches(header: str, etag: str) -> bool:
    candidates = [part.strip().removeprefix("W/") for part in header.split(",")]
    return "*" in candidates or etag in candidates


def _as_stored(response: Response, content: StoredFile | Content) -> Response:
    """The media type exactly as stored: Starlette appends a charset to ``text/*`` types, which
    would claim an encoding nobody declared (a CSV in Latin-1 is not UTF-8)."""
    response.headers["Content-Type"] = content.content_type
    return response


class _RangeRefusedInFormat:
    """Starlette's file response refuses a bad ``Range`` in plain text while sending (the range is
    checked against the file then): the refusal is caught on its way out and replaced by the
    face's own, with the same status and ``Content-Range``."""

    def __init__(self, response: Response, refuse: RangeRefusal) -> None:
        self.response = response
        self.refuse = refuse
        self.headers = response.headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        replaced = False

        async def guarded(message: Message) -> None:
            nonlocal replaced
            if message["type"] == "http.response.start" and message["status"] in (400, 416):
                replaced = True
                content_range = next(
                    (
                        v.decode("latin-1")
                        for k, v in message.get("headers", [])
                        if k.lower() == b"content-range"
                    ),
                    None,
                )
                await self.refuse(message["status"], content_range)(scope, receive, send)
                return
            if not replaced:
                await send(message)

        await self.response(scope, receive, guarded)
