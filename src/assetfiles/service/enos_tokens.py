"""The EnOS token service: access tokens for applications that prove they know their secret.

A request carries ``appKey``, ``timestamp`` (epoch ms) and ``encryption`` =
lowercase hex sha256(appKey + timestamp + appSecret). It is accepted when the timestamp is
within the skew window and the encryption matches (compared in constant time). While the
application has a valid token, ``get`` returns that same token with its remaining lifetime, as
EnOS documents.

Each signed request obtains one token. EnOS's samples compute their timestamp once per
process, so the same ``get`` (or a ``get`` and a ``refresh`` signed in the same millisecond)
arrives again: a repeat is answered with the token the first one obtained while that token is
valid, and refused (1001) after. A repeated ``refresh`` must name the same ``accessToken``.

``refresh`` does not retire the token it replaces at once: EnOS's Java SDK 0.1.x refreshes in
the background while requests still carry the old token, so the old one stays valid for
``refresh_grace_seconds`` (docs/enos.md).

Tokens are never stored: a token is an HMAC of (appKey, nonce) under the server key, so it can
be recomputed for "the same token again", and only its sha256 is kept for lookups.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import uuid
from typing import Any

from assetfiles.errors import BadInput, TokenExpired, TokenRefusal, TokenRefused, Unauthenticated
from assetfiles.model import CreatorKind, Permission, Principal, now_ms
from assetfiles.service.audit import Audit
from assetfiles.service.secrets import Sealed
from assetfiles.store.enos import Application, EnosStore, IssuedToken, SeenRequest

SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
POLICIES = {"asset:read": Permission.READ, "asset:write": Permission.WRITE}


def _refused(reason: TokenRefusal, message: str, *, field: str | None = None) -> TokenRefused:
    return TokenRefused(message, reason=reason, field=field)


class SecretBox:
    """Seals application secrets at rest under a key derived from the server's secret key."""

    def __init__(self, server_key: bytes) -> None:
        self._sealed = Sealed(server_key, "enos-application-secrets")

    def seal(self, secret: str) -> str:
        return self._sealed.seal(secret)

    def open(self, sealed: str) -> str:
        secret = self._sealed.open(sealed)
        if secret is None:
            # The server key changed since the application was stored: re-apply the fixture.
            raise _refused(
                TokenRefusal.UNKNOWN_APPLICATION,
                "appKey: the stored secret cannot be read with this server's key",
            )
        return secret


def principal_of(application: Application) -> Principal:
    return Principal(
        org_id=application.org_id,
        name=application.app_key,
        permissions=frozenset(POLICIES[p] for p in application.policies if p in POLICIES),
        kind=CreatorKind.TOKEN,
    )


class EnosTokenService:
    def __init__(
        self,
        store: EnosStore,
        server_key: bytes,
        *,
        ttl_seconds: int,
        window_seconds: int,
        refresh_grace_seconds: int = 300,
    ) -> None:
        self.store = store
        self.server_key = server_key
        self.box = SecretBox(server_key)
        self.ttl_ms = ttl_seconds * 1000
        self.window_ms = window_seconds * 1000
        self.grace_ms = refresh_grace_seconds * 1000
        self.audit: Audit | None = None

    async def register(
        self, org_id: str, app_key: str, secret: str | None, policies: list[str]
    ) -> tuple[bool, str | None]:
        """Create or update an application; returns (changed, the secret when one was generated).

        An existing application keeps its secret unless a new one is given.
        """
        existing = await self.store.get_application(app_key)
        if existing is not None and existing.org_id != org_id:
            raise BadInput(f"app_key: '{app_key}' belongs to another organization", field="app_key")
        generated = None
        if secret is None:
            if existing is not None:
                sealed = existing.sealed_secret
            else:
                # EnOS secrets are UUIDs (122 random bits); EnOS's Python library parses them so.
                generated = secret = str(uuid.uuid4())
        if secret is not None:
            if existing is not None and self._same_secret(existing.sealed_secret, secret):
                sealed = existing.sealed_secret
            else:
                sealed = self.box.seal(secret)
        application = Application(app_key, org_id, sealed, frozenset(policies))
        changed = await self.store.upsert_application(application, now_ms())
        return changed or (existing is not None and sealed != existing.sealed_secret), generated

    def _same_secret(self, sealed: str, secret: str) -> bool:
        try:
            return hmac.compare_digest(self.box.open(sealed), secret)
        except TokenRefused:
            return False

    # -- issuing ---------------------------------------------------------------------------

    async def get(self, body: Any) -> tuple[str, int]:
        """``token/get``: (accessToken, seconds it stays valid)."""
        application, now, stamp = await self._authenticate(
            body, required=("appKey", "encryption", "timestamp")
        )
        encryption = body["encryption"]
        seen = await self.store.seen_request("get", encryption, now)
        if seen is not None:
            return await self._again(seen, now)
        current = await self.store.valid_token(application.app_key, now)
        if current is not None:
            value, expire = self._token_value(current), max(1, (current.expires_at - now) // 1000)
        else:
            value, expire = await self._issue(application, now)
        # A concurrent identical request may record first; both answers are valid tokens.
        await self.store.record_request(
            "get", encryption, SeenRequest(_hash(value)), stamp + self.window_ms, now
        )
        return value, expire

    async def refresh(self, body: Any) -> tuple[str, int]:
        """``token/refresh``: a new token for a current or expired one of the same application.

        The old token stays valid for the grace period (or less, if it expires sooner).
        """
        application, now, stamp = await self._authenticate(
            body, required=("appKey", "encryption", "timestamp", "accessToken")
        )
        old = body["accessToken"]
        if not isinstance(old, str):
            raise _refused(TokenRefusal.MALFORMED, "accessToken: must be a string", field="accessToken")
        encryption, old_hash = body["encryption"], _hash(old)
        seen = await self.store.seen_request("refresh", encryption, now)
        if seen is not None:
            if not hmac.compare_digest(seen.access_token_hash or "", old_hash):
                raise _refused(
                    TokenRefusal.REPLAYED,
                    "encryption: already used to refresh another token",
                    field="encryption",
                )
            return await self._again(seen, now)
        value, expire = await self._issue(application, now, replaces=old_hash)
        seen = SeenRequest(_hash(value), old_hash)
        await self.store.record_request("refresh", encryption, seen, stamp + self.window_ms, now)
        return value, expire

    async def _again(self, seen: SeenRequest, now: int) -> tuple[str, int]:
        """A repeated request: the token it obtained the first time, while that one is valid."""
        found = await self.store.find_token(seen.token_hash)
        if found is None or found[0].expires_at <= now:
            message = "encryption: this request was already used and its token is gone; sign a new timestamp"
            raise _refused(TokenRefusal.REPLAYED, message, field="encryption")
        token = found[0]
        return self._token_value(token), max(1, (token.expires_at - now) // 1000)

    async def _issue(
        self, application: Application, now: int, replaces: str | None = None
    ) -> tuple[str, int]:
        token = IssuedToken(application.app_key, secrets.token_hex(16), now, now + self.ttl_ms)
        value = self._token_value(token)
        if not await self.store.insert_token(
            _hash(value), token, replaces=replaces, retire_at=now + self.grace_ms
        ):
            raise _refused(
                TokenRefusal.NOT_REFRESHABLE,
                "accessToken: not a token of this application",
                field="accessToken",
            )
        return value, self.ttl_ms // 1000

    def _token_value(self, token: IssuedToken) -> str:
        mac = hmac.new(self.server_key, f"enos-token|{token.app_key}|{token.nonce}".encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")

    async def _authenticate(self, body: Any, *, required: tuple[str, ...]) -> tuple[Application, int, int]:
        """(the application, now, the request's timestamp) once its signature checks out."""
        if not isinstance(body, dict):
            raise _refused(TokenRefusal.MALFORMED, "the body must be a JSON object")
        for name in required:
            if body.get(name) is None or body.get(name) == "":
                raise _refused(TokenRefusal.EMPTY, f"{name}: must not be empty", field=name)
        app_key, encryption, timestamp = body["appKey"], body["encryption"], body["timestamp"]
        if not isinstance(app_key, str):
            raise _refused(TokenRefusal.MALFORMED, "appKey: must be a string", field="appKey")
        if not isinstance(encryption, str) or not SHA256_HEX.fullmatch(encryption):
            raise _refused(
                TokenRefusal.MALFORMED,
                "encryption: must be 64 lowercase hexadecimal characters",
                field="encryption",
            )
        stamp = _timestamp(timestamp)
        now = now_ms()
        if abs(now - stamp) > self.window_ms:
            raise _refused(
                TokenRefusal.MALFORMED,
                f"timestamp: {stamp} is more than {self.window_ms // 1000} s from the server's clock ({now})",
                field="timestamp",
            )
        application = await self.store.get_application(app_key)
        if application is None and self.audit is not None:
            self.audit.sign_in_failed()
        if application is None:
            raise _refused(
                TokenRefusal.UNKNOWN_APPLICATION,
                f"appKey: application '{app_key}' does not exist",
                field="appKey",
            )
        secret = self.box.open(application.sealed_secret)
        expected = hashlib.sha256(f"{app_key}{timestamp}{secret}".encode()).hexdigest()
        if not hmac.compare_digest(expected, encryption):
            if self.audit is not None:
                self.audit.sign_in_failed()
            message = "encryption: does not match sha256(appKey + timestamp + appSecret)"
            raise _refused(TokenRefusal.BAD_SIGNATURE, message, field="encryption")
        return application, now, stamp

    # -- checking --------------------------------------------------------------------------

    async def principal(self, access_token: str | None) -> Principal:
        """Who an ``apim-accesstoken`` header belongs to; expired tokens are told apart (1203)."""
        if not access_token:
            raise Unauthenticated("apim-accesstoken: the header is missing", field="apim-accesstoken")
        found = await self.store.find_token(_hash(access_token))
        if found is None or not hmac.compare_digest(self._token_value(found[0]), access_token):
            if self.audit is not None:
                self.audit.sign_in_failed()
            raise Unauthenticated("apim-accesstoken: not a valid access token", field="apim-accesstoken")
        token, application = found
        if token.expires_at <= now_ms():
            raise TokenExpired("apim-accesstoken: the access token has expired", field="apim-accesstoken")
        return principal_of(application)


def _timestamp(value: Any) -> int:
    """Epoch milliseconds, sent as a number or a string of digits."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _refused(TokenRefusal.MALFORMED, "timestamp: must be epoch milliseconds", field="timestamp")
    text = str(value)
    if not text.isdigit():
        raise _refused(
            TokenRefusal.MALFORMED, f"timestamp: {value!r} is not epoch milliseconds", field="timestamp"
        )
    return int(text)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
