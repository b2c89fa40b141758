"""Who is calling, and may they do this: the only place credentials are checked."""

from __future__ import annotations

from assetfiles.errors import Forbidden, Unauthenticated
from assetfiles.model import CreatorKind, DeviceRef, Permission, Principal, now_ms
from assetfiles.service.audit import Audit
from assetfiles.service.secrets import same_hash, token_hash, verify_device_secret
from assetfiles.store.catalog import Catalog

#: A token's last use is written at most this often, so authentication stays a read.
LAST_USED_RESOLUTION_MS = 60_000


class Access:
    def __init__(self, catalog: Catalog, audit: Audit | None = None) -> None:
        self.catalog = catalog
        self.audit = audit

    def _refused(self) -> Unauthenticated:
        if self.audit is not None:
            self.audit.sign_in_failed()
        return Unauthenticated("the token is not valid")

    async def token_principal(self, secret: str) -> Principal:
        """The token's principal; unknown, revoked and expired tokens get the same answer."""
        digest = token_hash(secret)
        found = await self.catalog.find_token(digest)
        now = now_ms()
        if found is None or not same_hash(found[0], digest) or not found[1].usable(now):
            raise self._refused()
        token = found[1]
        if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION_MS:
            await self.catalog.token_used(token.org_id, token.name, now)
        return token.principal()

    async def device_principal(self, device: DeviceRef, secret: str) -> Principal:
        """A device authenticates with its own credential; it may only upload as itself."""
        for org_id, stored in await self.catalog.find_devices(device):
            if stored and verify_device_secret(secret, stored):
                return Principal(
                    org_id=org_id,
                    name=str(device),
                    permissions=frozenset({Permission.WRITE}),
                    kind=CreatorKind.DEVICE,
                    device=device,
                )
        if self.audit is not None:
            self.audit.sign_in_failed()
        raise Unauthenticated("the device credential is not valid")


def require(principal: Principal, permission: Permission) -> None:
    if not principal.can(permission):
        raise Forbidden(f"the token '{principal.name}' lacks the '{permission.value}' permission")
