"""Who is calling, and may they do this: the only place credentials are checked."""

from __future__ import annotations

import functools
import os
import secrets

import anyio
import anyio.to_thread

from assetfiles.errors import Forbidden, Unauthenticated
from assetfiles.model import (
    CreatorKind,
    DeviceCredential,
    DeviceRef,
    Permission,
    Principal,
    TokenRecord,
    now_ms,
)
from assetfiles.service.audit import Audit
from assetfiles.service.ports import Principals
from assetfiles.service.secrets import (
    device_digest,
    hash_device_secret,
    legacy_token_hash,
    same_hash,
    token_hash,
    verify_device_secret,
)

#: Concurrent scrypt verifications: one per core; more would only queue inside the CPU.
_SCRYPT_SLOTS = anyio.CapacityLimiter(os.cpu_count() or 2)


@functools.cache
def _dummy_hash() -> str:
    """A device hash nobody's secret matches, for the same work on unknown devices."""
    return hash_device_secret(secrets.token_urlsafe(32))


#: A token's last use is written at most this often, so authentication stays a read.
LAST_USED_RESOLUTION_MS = 60_000


class Access:
    def __init__(self, principals: Principals, audit: Audit | None = None, *, key: bytes) -> None:
        self.principals = principals
        self.audit = audit
        self.key = key
        #: (org id, token name) -> when this process last wrote the token's last use (epoch ms);
        #: taken before the write, so concurrent first uses in one process write once
        self._use_written: dict[tuple[str, str], int] = {}

    def _refused(self) -> Unauthenticated:
        if self.audit is not None:
            self.audit.sign_in_failed()
        return Unauthenticated("the token is not valid")

    async def token_principal(self, secret: str) -> Principal:
        """The token's principal; unknown, revoked and expired tokens get the same answer."""
        digest = token_hash(secret, self.key)
        found = await self.principals.find_token(digest)
        if found is None:  # stored before hashes were keyed: accepted once, then upgraded
            legacy = legacy_token_hash(secret)
            old = await self.principals.find_token(legacy)
            if old is not None and same_hash(old[0], legacy):
                await self.principals.rehash_token(legacy, digest)
                found = digest, old[1]
        now = now_ms()
        token = _usable(found, digest, now)
        if token is None:
            raise self._refused()
        if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION_MS:
            await self._record_use(token.org_id, token.name, now)
        return token.principal()

    async def _record_use(self, org_id: str, name: str, now: int) -> None:
        """Write a token's last use at most once per LAST_USED_RESOLUTION_MS: once per process
        (the memo is taken before the write is awaited), and the UPDATE's own condition keeps
        other processes from writing it again within the resolution."""
        key = (org_id, name)
        if now - self._use_written.get(key, -LAST_USED_RESOLUTION_MS) < LAST_USED_RESOLUTION_MS:
            return
        if len(self._use_written) >= 100_000:
            self._use_written.clear()  # bounded: at worst one extra write per token
        self._use_written[key] = now
        await self.principals.token_used(org_id, name, now, LAST_USED_RESOLUTION_MS)

    async def token_valid(self, secret: str) -> bool:
        """Whether ``secret`` is still a usable token (not revoked, not expired), without counting
        a use or a failure: for work that outlives one request (an event stream)."""
        digest = token_hash(secret, self.key)
        return _usable(await self.principals.find_token(digest), digest, now_ms()) is not None

    async def device_principal(self, device: DeviceRef, secret: str) -> Principal:
        """A device authenticates with its own credential; it may only upload as itself.

        The fast check first: a secret that passed before matches its keyed digest (an HMAC,
        microseconds). Otherwise the slow one: scrypt (~60 ms of CPU) on worker threads, at most
        one per core at a time, so bad credentials cannot stall the event loop; an unknown device
        is checked against a dummy hash, so the answer takes as long as for a known device with
        a wrong secret. A secret that passes it has its digest kept for the next request.
        """
        found = [
            credential for credential in await self.principals.find_devices(device) if credential.secret_hash
        ]
        digests = {
            credential.org_id: device_digest(secret, credential.org_id, str(device), self.key)
            for credential in found
        }
        for credential in found:
            if credential.secret_digest and same_hash(credential.secret_digest, digests[credential.org_id]):
                return _device_principal(credential.org_id, device)
        for credential in found or [DeviceCredential("", _dummy_hash())]:
            assert credential.secret_hash is not None
            matches = await anyio.to_thread.run_sync(
                verify_device_secret, secret, credential.secret_hash, limiter=_SCRYPT_SLOTS
            )
            if matches and credential.org_id:
                await self.principals.remember_device_digest(
                    credential.org_id, device, credential.secret_hash, digests[credential.org_id]
                )
                return _device_principal(credential.org_id, device)
        if self.audit is not None:
            self.audit.sign_in_failed()
        raise Unauthenticated("the device credential is not valid")


def _device_principal(org_id: str, device: DeviceRef) -> Principal:
    return Principal(
        org_id=org_id,
        name=str(device),
        permissions=frozenset({Permission.WRITE}),
        kind=CreatorKind.DEVICE,
        device=device,
    )


def _usable(found: tuple[str, TokenRecord] | None, digest: str, now: int) -> TokenRecord | None:
    """The token a lookup by ``digest`` found, if its stored hash matches (in constant time) and
    it is neither revoked nor expired."""
    if found is None or not same_hash(found[0], digest) or not found[1].usable(now):
        return None
    return found[1]


def require(principal: Principal, permission: Permission) -> None:
    if not principal.can(permission):
        raise Forbidden(f"the token '{principal.name}' lacks the '{permission.value}' permission")
