"""Reading request bodies with bounds on time: every face reads bodies through here.

A client that sends complete headers and then nothing (or a byte a minute) would otherwise hold
a connection and a request slot forever. Each chunk must arrive within
``body_idle_timeout_seconds``; after that long, the average rate must stay at or above
``body_min_bytes_per_second``. Either failure, and a client that disconnects mid-body, end in a
typed error that the face renders (408, or 400 for a disconnect, which nobody receives but which
keeps it out of the 500s); whatever was spooled is discarded by the caller, as for any refusal.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import anyio
from starlette.requests import ClientDisconnect, Request

from assetfiles.config import Settings
from assetfiles.errors import BadInput, ClientGone, PayloadTooLarge, RequestTimeout


async def body_chunks(request: Request) -> AsyncIterator[bytes]:
    """The body's non-empty chunks, as they arrive, within the configured time bounds."""
    settings: Settings = request.app.state.services.settings
    idle = settings.body_idle_timeout_seconds
    min_rate = settings.body_min_bytes_per_second
    stream = request.stream().__aiter__()
    started = time.monotonic()
    received = 0
    while True:
        try:
            with anyio.fail_after(idle):
                chunk = await stream.__anext__()
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise RequestTimeout(f"body: nothing received for {idle:g} s", field="body") from None
        except ClientDisconnect:
            raise ClientGone(
                "body: ended early (the client disconnected, or its chunked framing was malformed)",
                field="body",
            ) from None
        if not chunk:
            continue
        received += len(chunk)
        elapsed = time.monotonic() - started
        if min_rate and elapsed > idle and received / elapsed < min_rate:
            raise RequestTimeout(
                f"body: arriving at {received / elapsed:.0f} bytes/s, under the minimum of {min_rate}",
                field="body",
            )
        yield chunk


async def read_body(request: Request, max_bytes: int) -> bytes | None:
    """The whole body within the time bounds, or None as soon as it is known to exceed
    ``max_bytes`` (from Content-Length, or once that much has arrived: no more is read)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        return None
    body = bytearray()
    async for chunk in body_chunks(request):
        body += chunk
        if len(body) > max_bytes:
            return None
    return bytes(body)


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
