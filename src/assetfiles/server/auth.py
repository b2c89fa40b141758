"""Reading credentials (headers, a signed URL's parameters) and the public base URL from a request."""

from __future__ import annotations

import re

from starlette.requests import Request

from assetfiles.config import Settings
from assetfiles.errors import BadInput, Unauthenticated


def bearer_secret(request: Request, schemes: tuple[str, ...]) -> str:
    """The secret of an ``Authorization: <scheme> <secret>`` header whose scheme is one of ``schemes``."""
    header = request.headers.get("authorization")
    if not header:
        raise Unauthenticated(
            f"the Authorization header is missing (expected '{schemes[0].title()} <secret>')"
        )
    scheme, _, secret = header.strip().partition(" ")
    if scheme.lower() not in schemes or not secret.strip():
        expected = " or ".join(f"'{s.title()} <secret>'" for s in schemes)
        raise Unauthenticated(f"the Authorization header must be {expected}")
    return secret.strip()


#: A Host header as RFC 9110 allows it: a name or IPv4 address, or a bracketed IPv6 address,
#: and an optional port. Anything else (``evil.example/x?y=``) would end up inside signed URLs.
_HOST = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$"
)


def public_base_url(request: Request, settings: Settings) -> str:
    """Where clients reach this server: the configured public URL, else the request's Host header,
    when it is a well-formed host and (if ``allowed_hosts`` is set) one of those."""
    if settings.public_url:
        return settings.public_url
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    if not _HOST.fullmatch(host):
        raise BadInput("Host: not a host name, address or port", field="Host")
    if settings.allowed_hosts is not None:
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if host.lower() not in settings.allowed_hosts and name.lower() not in settings.allowed_hosts:
            raise BadInput(f"Host: {host!r} is not one of this server's hosts", field="Host")
    return f"{request.url.scheme}://{host}"


def signed_parameters(request: Request) -> tuple[str | None, str | None, str | None]:
    """The ``org``, ``exp`` and ``sig`` of a signed URL's query, as ``request.query_params`` reads
    them (the last of repeated names wins, blanks are kept). The URLs we sign carry nothing
    escaped, so their query is split here; one with ``%`` or ``+`` in it is decoded in full."""
    query: bytes = request.scope["query_string"]
    if b"%" in query or b"+" in query:
        params = request.query_params
        return params.get("org"), params.get("exp"), params.get("sig")
    found: dict[str, str] = {}
    for pair in query.decode("latin-1").split("&"):
        name, _, value = pair.partition("=")
        if name in _SIGNED:
            found[name] = value
    return found.get("org"), found.get("exp"), found.get("sig")


_SIGNED = frozenset({"org", "exp", "sig"})
