"""The request id every answer carries: the caller's ``X-Request-Id`` when it is sane, else a new one."""

from __future__ import annotations

import re
import uuid
import zlib

from starlette.requests import Request

HEADER = "X-Request-Id"
#: A caller's id is echoed into headers, envelopes and logs: printable, short, no separators.
_ACCEPTED = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def accepted_request_id(sent: str | None) -> str | None:
    """The caller's id when it is safe to echo, else None."""
    return sent if sent is not None and _ACCEPTED.fullmatch(sent) else None


def new_request_id() -> str:
    return str(uuid.uuid4())


def request_id_of(request: Request) -> str:
    """The request's id: set by the request middleware, or made here once when it is absent."""
    existing = getattr(request.state, "request_id", None)
    if isinstance(existing, str):
        return existing
    value = accepted_request_id(request.headers.get(HEADER)) or new_request_id()
    request.state.request_id = value
    return value


def numeric_request_id(request_id: str) -> int:
    """A stable 31-bit number for a request id, for clients that declare ``requestId`` an int.

    EnOS's Java SDKs parse ``getDownloadUrl`` answers into a class whose ``requestId`` is a Java
    ``int``; the full id still travels in the ``X-Request-Id`` header and the logs.
    """
    return zlib.crc32(request_id.encode()) & 0x7FFFFFFF
