"""In-memory stand-ins for the storage ports of assetfiles.service.ports: rules run against them
with no database. Each keeps the port's isolation rule (everything is keyed by organization)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from assetfiles.model import (
    Asset,
    DeviceCredential,
    DeviceRef,
    DeviceSession,
    Permission,
    Quota,
    TokenRecord,
    now_ms,
)
from assetfiles.store.principals import SecretInUse


class FakePrincipals:
    def __init__(self) -> None:
        self.organizations: dict[str, str] = {}
        #: (org, name) -> (secret hash, record)
        self.tokens: dict[tuple[str, str], tuple[str, TokenRecord]] = {}
        self.products: set[tuple[str, str]] = set()
        self.devices: dict[tuple[str, DeviceRef], str | None] = {}
        self.device_digests: dict[tuple[str, DeviceRef], str] = {}
        self.sealed: dict[tuple[str, DeviceRef], str | None] = {}
        self.sessions: dict[str, DeviceSession] = {}
        self.messages: dict[tuple[str, str], tuple[str, str]] = {}
        self.activation: dict[tuple[str, DeviceRef], str | None] = {}
        self.uses: list[tuple[str, str, int]] = []

    async def upsert_organization(self, org_id: str, name: str) -> None:
        self.organizations[org_id] = name

    async def organization_exists(self, org_id: str) -> bool:
        return org_id in self.organizations

    async def upsert_token(
        self,
        org_id: str,
        name: str,
        secret_hash: str | None,
        permissions: Iterable[Permission],
        expires_at: int | None = None,
    ) -> bool:
        key = (org_id, name)
        if secret_hash is not None and any(
            stored == secret_hash and other != key for other, (stored, _) in self.tokens.items()
        ):
            raise SecretInUse("that token secret is already in use")
        found = self.tokens.get(key)
        if found is None:
            if secret_hash is None:
                raise ValueError("a new token needs a secret")
            record = TokenRecord(org_id, name, frozenset(permissions), now_ms(), expires_at, None, None)
            self.tokens[key] = (secret_hash, record)
            return True
        stored, record = found
        record = replace(record, permissions=frozenset(permissions), expires_at=expires_at)
        if secret_hash is not None:
            stored, record = secret_hash, replace(record, revoked_at=None)
        self.tokens[key] = (stored, record)
        return False

    async def token_exists(self, org_id: str, name: str) -> bool:
        return (org_id, name) in self.tokens

    async def revoke_token(self, org_id: str, name: str, now: int) -> bool:
        found = self.tokens.get((org_id, name))
        if found is None or found[1].revoked_at is not None:
            return False
        self.tokens[(org_id, name)] = (found[0], replace(found[1], revoked_at=now))
        return True

    async def list_tokens(self, org_id: str | None) -> list[TokenRecord]:
        return [record for (org, _), (_, record) in sorted(self.tokens.items()) if org_id in (None, org)]

    async def get_token(self, org_id: str, name: str) -> TokenRecord | None:
        found = self.tokens.get((org_id, name))
        return found[1] if found else None

    async def find_token(self, secret_hash: str) -> tuple[str, TokenRecord] | None:
        return next((found for found in self.tokens.values() if found[0] == secret_hash), None)

    async def rehash_token(self, old_hash: str, new_hash: str) -> None:
        for key, (stored, record) in list(self.tokens.items()):
            if stored == old_hash:
                self.tokens[key] = (new_hash, record)

    async def token_used(self, org_id: str, name: str, now: int, resolution_ms: int) -> bool:
        stored, record = self.tokens[(org_id, name)]
        if record.last_used_at is not None and record.last_used_at > now - resolution_ms:
            return False
        self.tokens[(org_id, name)] = (stored, replace(record, last_used_at=now))
        self.uses.append((org_id, name, now))
        return True

    async def upsert_product(self, org_id: str, product_id: str, name: str | None = None) -> None:
        self.products.add((org_id, product_id))

    async def upsert_device(
        self, org_id: str, device: DeviceRef, secret_hash: str | None, sealed_secret: str | None = None
    ) -> bool:
        created = (org_id, device) not in self.devices
        if created or secret_hash is not None:
            self.devices[(org_id, device)] = secret_hash
            self.device_digests.pop((org_id, device), None)
            self.sealed[(org_id, device)] = sealed_secret
            self.sessions = {
                d: s for d, s in self.sessions.items() if (s.org_id, s.device) != (org_id, device)
            }
        elif sealed_secret is not None:
            self.sealed[(org_id, device)] = sealed_secret
        return created

    async def device_credential(self, org_id: str, device: DeviceRef) -> str | None:
        return self.devices.get((org_id, device))

    async def find_devices(self, device: DeviceRef) -> list[DeviceCredential]:
        return [
            DeviceCredential(
                org,
                secret,
                self.device_digests.get((org, found)),
                self.sealed.get((org, found)),
                self.activation.get((org, found)),
            )
            for (org, found), secret in self.devices.items()
            if found == device
        ]

    async def remember_device_digest(
        self, org_id: str, device: DeviceRef, secret_hash: str, digest: str
    ) -> None:
        if self.devices.get((org_id, device)) == secret_hash:
            self.device_digests[(org_id, device)] = digest

    async def open_device_session(self, digest: str, session: DeviceSession, keep: int) -> None:
        self.sessions[digest] = session
        mine = sorted(
            (s.created_at, d)
            for d, s in self.sessions.items()
            if (s.org_id, s.device) == (session.org_id, session.device)
        )
        for _, old in mine[: max(0, len(mine) - keep)]:
            del self.sessions[old]

    async def remember_device_message(
        self, session_digest: str, message_id: str, fingerprint: str, answer: str, now: int
    ) -> None:
        self.messages.setdefault((session_digest, message_id), (fingerprint, answer))

    async def find_device_message(self, session_digest: str, message_id: str) -> tuple[str, str] | None:
        return self.messages.get((session_digest, message_id))

    async def find_device_session(self, digest: str) -> DeviceSession | None:
        return self.sessions.get(digest)

    async def list_device_sessions(self, org_id: str | None, now: int) -> list[DeviceSession]:
        return [s for s in self.sessions.values() if s.expires_at > now and org_id in (None, s.org_id)]

    async def set_device_activation(
        self, org_id: str, device: DeviceRef, state: str | None, *, only_from: str | None = None
    ) -> bool:
        key = (org_id, device)
        if key not in self.devices or (only_from is not None and self.activation.get(key) != only_from):
            return False
        self.activation[key] = state
        return True

    async def revoke_device_sessions(
        self, org_id: str, device: DeviceRef, protocol: str | None = None
    ) -> int:
        gone = [
            d
            for d, s in self.sessions.items()
            if (s.org_id, s.device) == (org_id, device) and protocol in (None, s.protocol)
        ]
        for digest in gone:
            del self.sessions[digest]
        return len(gone)


class FakeAssets:
    def __init__(self, *assets: Asset) -> None:
        self.assets: dict[tuple[str, str], Asset] = {(a.org_id, a.id): a for a in assets}

    async def upsert_asset(self, asset: Asset) -> None:
        self.assets[(asset.org_id, asset.id)] = asset

    async def get_asset(self, org_id: str, asset_id: str) -> Asset | None:
        return self.assets.get((org_id, asset_id))

    async def asset_exists(self, org_id: str, asset_id: str) -> bool:
        return (org_id, asset_id) in self.assets

    async def assets_fed_by(self, org_id: str, device: DeviceRef) -> list[str]:
        return sorted(
            asset.id
            for (org, _), asset in self.assets.items()
            if org == org_id and any(signal.channel.device == device for signal in asset.signals)
        )

    async def feeding_devices(self, org_id: str, asset_id: str) -> frozenset[DeviceRef]:
        asset = self.assets.get((org_id, asset_id))
        return frozenset(signal.channel.device for signal in asset.signals) if asset else frozenset()

    def _matching(self, org_id: str, text: str | None, ids: Sequence[str] | None) -> list[Asset]:
        found = [asset for (org, _), asset in self.assets.items() if org == org_id]
        if ids is not None:
            found = [asset for asset in found if asset.id in ids]
        if text:
            found = [a for a in found if text.lower() in a.name.lower() or text.lower() in a.id.lower()]
        return sorted(found, key=lambda asset: (asset.name, asset.id))

    async def list_assets(
        self, org_id: str, text: str | None, ids: Sequence[str] | None, limit: int, offset: int
    ) -> list[Asset]:
        return self._matching(org_id, text, ids)[offset : offset + limit]

    async def count_assets(self, org_id: str, text: str | None, ids: Sequence[str] | None) -> int:
        return len(self._matching(org_id, text, ids))


class FakeQuotas:
    def __init__(self) -> None:
        self.quotas: dict[str, Quota] = {}
        #: org -> (bytes, contents)
        self.stored: dict[str, tuple[int, int]] = {}

    async def get_quota(self, org_id: str) -> Quota | None:
        return self.quotas.get(org_id)

    async def set_quota(self, org_id: str, quota: Quota | None) -> None:
        if quota is None:
            self.quotas.pop(org_id, None)
        else:
            self.quotas[org_id] = quota

    async def usage(self, org_id: str | None = None) -> dict[str, tuple[int, int, Quota | None]]:
        orgs = sorted(set(self.stored) | set(self.quotas)) if org_id is None else [org_id]
        return {org: (*self.stored.get(org, (0, 0)), self.quotas.get(org)) for org in orgs}
