"""HMAC-signed, expiring transfer URLs bound to one object, one organization and one action."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from assetfiles.errors import BadInput, Forbidden

MAX_TTL_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class SignedUrl:
    """A path with its signed query string; faces prefix it with the public base URL."""

    path: str
    expires_at: int  # epoch seconds

    def absolute(self, base_url: str) -> str:
        """Our paths get the public base URL; an object store's presigned URL is already absolute."""
        if self.path.startswith(("http://", "https://")):
            return self.path
        return base_url.rstrip("/") + self.path


class UrlSigner:
    DOWNLOAD = "download"
    UPLOAD = "upload"
    RESUMABLE = "resumable"
    _PATHS = {DOWNLOAD: "/transfer/content/", UPLOAD: "/transfer/uploads/", RESUMABLE: "/files/"}

    def __init__(self, key: bytes, ttl_seconds: int) -> None:
        self._key = key
        self.ttl_seconds = ttl_seconds

    def _signature(self, action: str, org_id: str, object_id: str, expires_at: int) -> str:
        message = f"{action}\n{org_id}\n{object_id}\n{expires_at}".encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def sign(self, action: str, org_id: str, object_id: str, *, ttl_seconds: int | None = None) -> SignedUrl:
        """A URL valid for ``ttl_seconds`` (1 s to 7 days; default: the server's setting)."""
        if ttl_seconds is not None and not 1 <= ttl_seconds <= MAX_TTL_SECONDS:
            raise BadInput(f"expiresIn: must be between 1 and {MAX_TTL_SECONDS} seconds", field="expiresIn")
        expires_at = int(time.time()) + (ttl_seconds or self.ttl_seconds)
        return self.sign_until(action, org_id, object_id, expires_at)

    def sign_until(self, action: str, org_id: str, object_id: str, expires_at: int) -> SignedUrl:
        query = urlencode(
            {"org": org_id, "exp": expires_at, "sig": self._signature(action, org_id, object_id, expires_at)}
        )
        return SignedUrl(f"{self._PATHS[action]}{quote(object_id, safe='')}?{query}", expires_at)

    def verify(
        self, action: str, org_id: str | None, object_id: str, expires: str | None, sig: str | None
    ) -> str:
        """Check a presented URL; returns its organization. Raises Forbidden when tampered or expired."""
        if not org_id or not expires or not sig:
            raise Forbidden("the URL is not signed (org, exp and sig are required)")
        try:
            expires_at = int(expires)
        except ValueError:
            raise Forbidden("the URL signature is invalid") from None
        expected = self._signature(action, org_id, object_id, expires_at)
        if not hmac.compare_digest(expected.encode(), sig.encode()):
            raise Forbidden("the URL signature is invalid")
        if expires_at < time.time():
            raise Forbidden("the URL has expired; ask for a new one")
        return org_id
