"""Reading credentials and the public base URL from a request."""

from __future__ import annotations

from starlette.requests import Request

from assetfiles.errors import Unauthenticated


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


def public_base_url(request: Request, configured: str | None) -> str:
    """Where clients reach this server: the configured public URL, else what the request used."""
    if configured:
        return configured
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    return f"{request.url.scheme}://{host}"
