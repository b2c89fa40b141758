"""What every transfer shares: a response's outcome, its ranges and digests, and the last check.

Both the one-stream engine (:mod:`assetfiles.client.transfer`) and the multi-stream one
(:mod:`assetfiles.client.ranges`) classify responses and verify files the same way, here.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp

from assetfiles.client.errors import Failed, Gone, Refused, Retryable
from assetfiles.client.remote import RemoteFile, Target
from assetfiles.client.retry import retry_after_seconds

CHUNK = 1024 * 1024

Resolve = Callable[[], Awaitable[Target]]
Progress = Callable[[int], None]


@dataclass
class Fetched:
    """A file in place: its verified sha256, and the bytes that crossed the network for it."""

    sha256: str
    received: int  # bytes that crossed the network for this file in this run


def repr_digest_sha256(header: str | None) -> str | None:
    """Hex sha256 from an RFC 9530 ``Repr-Digest: sha-256=:<base64>:`` header."""
    for member in (header or "").split(","):
        algorithm, _, value = member.strip().partition("=")
        if algorithm.strip().lower() == "sha-256" and value.startswith(":") and value.endswith(":"):
            try:
                return base64.b64decode(value[1:-1], validate=True).hex()
            except ValueError:
                return None
    return None


def classify_status(response: aiohttp.ClientResponse) -> None:
    """Raise the outcome of a response that carries no bytes for us; return for 200 and 206."""
    status = response.status
    if status in (200, 206):
        return
    if status in (401, 403, 410):  # an expired signed URL, or (EnOS) an expired access token
        raise Refused(f"URL refused: HTTP {status}")
    if status == 429 or status >= 500:
        raise Retryable(f"HTTP {status}", wait=retry_after_seconds(response.headers.get("Retry-After")))
    if status == 404:
        raise Gone("not found: the content was deleted on the server")
    raise Failed(f"HTTP {status}")


def content_range_start(header: str | None) -> int | None:
    """``bytes 100-199/200`` -> 100."""
    if not header or not header.startswith("bytes "):
        return None
    first, _, _ = header[6:].partition("-")
    return int(first) if first.isdigit() else None


def partial_key(content_id: str) -> str:
    """A file-name-safe key for the partial files of a content id."""
    return hashlib.sha256(content_id.encode()).hexdigest()[:32]


#: Errors of the connection or the body: the same request, from what arrived, may succeed.
TRANSIENT = (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, TimeoutError)


def verify(
    length: int, actual: str, remote: RemoteFile, expected: str | None, discard: Callable[[], None]
) -> None:
    """The last check before a file goes into place: its length, and its sha256 where one is known."""
    if length != remote.length:
        discard()
        raise Failed(f"length mismatch: got {length} bytes, listed {remote.length}")
    if expected and actual != expected:
        discard()
        raise Failed(f"sha256 mismatch: got {actual}, expected {expected}")
