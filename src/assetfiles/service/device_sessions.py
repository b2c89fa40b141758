"""Device logins and the sessions they open: the EnOS device HTTP API's ``/auth`` and Murano's
one-time activation (whose token is a session that does not expire).

A device signs its login with a digest over the sorted parameters and its secret (EnOS's
``SignUtil``: ``key1value1key2value2...secret``, sha256 by default), which only a server that can
read the secret can check: device secrets are kept sealed under the server key for that. The
login is the slow, audited step; it yields a random session id the device then sends with every
request, and the catalog keeps only its keyed digest (an HMAC under the server key), so each
later request costs one HMAC and one indexed read. Sessions expire after the lifetime the device
asked for (bounded), at most ``MAX_SESSIONS_PER_DEVICE`` stay open per device (the oldest close
first), replacing the device's secret closes them all, and ``assetfiles device-sessions`` lists
and revokes them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import string
from collections.abc import Awaitable, Callable
from typing import Any

from assetfiles.errors import BadInput, Conflict, NotFound, Unauthenticated
from assetfiles.model import CreatorKind, DeviceRef, DeviceSession, Permission, Principal, now_ms
from assetfiles.service.audit import Audit
from assetfiles.service.ports import Principals
from assetfiles.service.secrets import Sealed

#: The SDK's default session lifetime is 5 minutes; a device may ask for up to a day.
MAX_LIFETIME_MS = 24 * 3600 * 1000
MIN_LIFETIME_MS = 1000
MAX_SESSIONS_PER_DEVICE = 16
MAX_MESSAGE_ID = 64
MURANO = "murano"
ENABLED, ACTIVATED = "enabled", "activated"
MURANO_TOKEN_LENGTH = 40
TOKEN_ALPHABET = string.ascii_letters + string.digits
#: Murano tokens do not expire: they last until revoked or replaced by a new activation.
NEVER_MS = 253_402_300_799_000  # 9999-12-31T23:59:59Z
#: signMethod -> the digest EnOS's SignMethod computes (sha1 upper-case hex, for its history)
SIGN_METHODS: dict[str, Callable[[str], str]] = {
    "sha256": lambda text: hashlib.sha256(text.encode()).hexdigest(),
    "sha1": lambda text: hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest().upper(),
    "md5": lambda text: hashlib.md5(text.encode(), usedforsecurity=False).hexdigest(),
}


def login_signature(params: dict[str, str], secret: str, method: str) -> str:
    """EnOS's SignUtil: every parameter as key then value, keys sorted, then the secret."""
    text = "".join(f"{key}{params[key]}" for key in sorted(params)) + secret
    return SIGN_METHODS[method](text)


def device_secrets(server_key: bytes) -> Sealed:
    return Sealed(server_key, "device-secrets")


class DeviceSessions:
    def __init__(self, principals: Principals, audit: Audit | None, *, key: bytes) -> None:
        self.principals = principals
        self.audit = audit
        self.key = key
        self.sealed = device_secrets(key)

    def _digest(self, session_id: str) -> str:
        return hmac.new(
            self.key, b"assetfiles:device-session:" + session_id.encode(), hashlib.sha256
        ).hexdigest()

    async def login(self, device: DeviceRef, body: Any, protocol: str = "enos") -> tuple[str, DeviceSession]:
        """Check a signed login body (``signMethod``, ``lifetime`` in ms, ``sign``); open a session."""
        if not isinstance(body, dict):
            raise BadInput("body: must be a JSON object with signMethod, lifetime and sign", field="body")
        method = body.get("signMethod", "sha256")
        if not isinstance(method, str) or method.lower() not in SIGN_METHODS:
            raise BadInput(f"signMethod: must be one of {', '.join(SIGN_METHODS)}", field="signMethod")
        method = method.lower()
        lifetime = body.get("lifetime")
        if isinstance(lifetime, bool) or not isinstance(lifetime, int):
            raise BadInput("lifetime: required, the session's lifetime in milliseconds", field="lifetime")
        if not MIN_LIFETIME_MS <= lifetime <= MAX_LIFETIME_MS:
            raise BadInput(
                f"lifetime: must be between {MIN_LIFETIME_MS} and {MAX_LIFETIME_MS} milliseconds",
                field="lifetime",
            )
        sign = body.get("sign")
        if not isinstance(sign, str) or not sign or len(sign) > 128:
            raise BadInput("sign: required, the login's signature", field="sign")
        params = {
            "productKey": device.product_id,
            "deviceKey": device.device_id,
            "lifetime": str(lifetime),
            "signMethod": method,
        }
        org_id = await self._signed_by(device, params, method, sign)
        now = now_ms()
        session = DeviceSession(org_id, device, protocol, now, now + lifetime)
        session_id = secrets.token_urlsafe(32)
        await self.principals.open_device_session(self._digest(session_id), session, MAX_SESSIONS_PER_DEVICE)
        if self.audit is not None:
            await self.audit.record(
                "device.session_opened",
                org_id=org_id,
                actor=session_principal(session),
                target=str(device),
                detail={"protocol": protocol, "lifetime_ms": lifetime},
            )
        return session_id, session

    async def _signed_by(self, device: DeviceRef, params: dict[str, str], method: str, sign: str) -> str:
        """The organization whose device secret signed ``params``; every candidate is checked, in
        constant time, so the answer does not tell which part was wrong."""
        signer = None
        for credential in await self.principals.find_devices(device):
            secret = self.sealed.open(credential.sealed_secret) if credential.sealed_secret else None
            expected = login_signature(
                params, secret if secret is not None else secrets.token_hex(16), method
            )
            if hmac.compare_digest(expected.lower().encode(), sign.lower().encode()) and secret is not None:
                signer = credential.org_id
        if signer is None:
            if self.audit is not None:
                self.audit.sign_in_failed()
            raise Unauthenticated(
                "the device login's signature does not match (productKey, deviceKey, secret)"
            )
        return signer

    async def principal(self, device: DeviceRef, session_id: str | None) -> Principal:
        """The device a session belongs to, if it is this device's and has not expired."""
        if not session_id:
            raise Unauthenticated("sessionId: required (log in at /auth/{productKey}/{deviceKey} first)")
        if len(session_id) > 128:
            raise Unauthenticated("sessionId: not a session of this server")
        session = await self.principals.find_device_session(self._digest(session_id))
        if session is None or session.device != device:
            raise Unauthenticated("sessionId: not a session of this device (log in again)")
        if session.expires_at <= now_ms():
            raise Unauthenticated("sessionId: the session expired (log in again)")
        return session_principal(session)

    async def once(
        self, session_id: str, message_id: str | None, fingerprint: str, post: Callable[[], Awaitable[Any]]
    ) -> Any:
        """The rule for a message sent again: within one session, a message with the id and the
        exact content (``fingerprint``: the message and its files' sha256) of one already answered
        gets that answer again and stores nothing. The same id with other content is a new message
        (stored as usual; the first answer stays remembered). Messages without an id, or with one
        longer than 64 characters, are not remembered. Two identical messages in flight at once
        may both be stored: the rule is for re-sends after an answer was lost."""
        if message_id is None or len(message_id) > MAX_MESSAGE_ID:
            return await post()
        digest = self._digest(session_id)
        known = await self.principals.find_device_message(digest, message_id)
        if known is not None and hmac.compare_digest(known[0], fingerprint):
            return json.loads(known[1])
        data = await post()
        if known is None:
            await self.principals.remember_device_message(
                digest, message_id, fingerprint, json.dumps(data), now_ms()
            )
        return data

    async def activate(self, device: DeviceRef) -> str:
        """Murano's activation: an enabled device gets its token, once. Unknown: NotFound (404);
        not enabled, or activated already: Conflict (409). The new token replaces any earlier one."""
        known = await self.principals.find_devices(device)
        if not known:
            raise NotFound(f"id: no device '{device.device_id}' in product '{device.product_id}'", field="id")
        for credential in known:
            if credential.activation == ENABLED and await self.principals.set_device_activation(
                credential.org_id, device, ACTIVATED, only_from=ENABLED
            ):
                await self.principals.revoke_device_sessions(credential.org_id, device, MURANO)
                token = "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(MURANO_TOKEN_LENGTH))
                now = now_ms()
                session = DeviceSession(credential.org_id, device, MURANO, now, NEVER_MS)
                await self.principals.open_device_session(
                    self._digest(token), session, MAX_SESSIONS_PER_DEVICE
                )
                if self.audit is not None:
                    await self.audit.record(
                        "device.activated", org_id=credential.org_id, actor=session_principal(session),
                        target=str(device), detail={"protocol": MURANO},
                    )  # fmt: skip
                return token
        raise Conflict(
            f"id: device '{device.device_id}' is not enabled for activation (or is activated)", field="id"
        )

    async def enable_activation(self, org_id: str, device: DeviceRef) -> None:
        """Let the device activate (again): its next activation gets a new token."""
        if not await self.principals.set_device_activation(org_id, device, ENABLED):
            raise NotFound(f"device: no device '{device}' in organization '{org_id}'", field="device")
        if self.audit is not None:
            await self.audit.record("device.activation_enabled", org_id=org_id, target=str(device))

    async def token_principal(
        self, product_id: str, token: str | None, identity: str | None = None
    ) -> Principal:
        """The Murano device a token belongs to, in this product (and of this identity, when the
        caller named one, as Basic authentication does)."""
        if not token or len(token) > 128:
            raise Unauthenticated("a device token is required (X-Exosite-CIK, or Authorization: token ...)")
        session = await self.principals.find_device_session(self._digest(token))
        if (
            session is None
            or session.protocol != MURANO
            or session.device.product_id != product_id
            or (identity is not None and session.device.device_id != identity)
        ):
            raise Unauthenticated("the device token is not valid for this product")
        return session_principal(session)

    async def list(self, org_id: str | None) -> list[DeviceSession]:
        return await self.principals.list_device_sessions(org_id, now_ms())

    async def revoke(self, org_id: str, device: DeviceRef) -> int:
        revoked = await self.principals.revoke_device_sessions(org_id, device)
        if self.audit is not None and revoked:
            await self.audit.record(
                "device.sessions_revoked", org_id=org_id, target=str(device), detail={"sessions": revoked}
            )
        return revoked


def session_principal(session: DeviceSession) -> Principal:
    """A device in session reads and writes its own files, and nothing else (the device face
    reaches files only through the device itself)."""
    return Principal(
        org_id=session.org_id,
        name=str(session.device),
        permissions=frozenset({Permission.READ, Permission.WRITE}),
        kind=CreatorKind.DEVICE,
        device=session.device,
    )
