"""Creating and retiring what callers authenticate as: organizations' API tokens, in one set of rules.

The fixture loader (``assetfiles apply``), the CLI (``assetfiles token ...``) and the console all
come through here, so a token made one way obeys the same rules as one made another: a name of
1-128 characters, a secret of at least 16 characters (generated ones carry 256 bits), at least
one permission, an expiry in the future. Secrets are stored only as hashes and shown once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from assetfiles.errors import BadInput, Conflict, NotFound
from assetfiles.model import OBJECT_ID, Permission, TokenRecord, check_identifier, now_ms
from assetfiles.service.audit import Audit
from assetfiles.service.ports import Principals
from assetfiles.service.secrets import new_secret, token_hash
from assetfiles.store.principals import SecretInUse

MIN_TOKEN_SECRET = 16
MAX_TOKEN_NAME = 128
#: Longest lifetime ``--expires-in`` accepts: ten years.
MAX_EXPIRES_IN = 10 * 365 * 24 * 3600


@dataclass(frozen=True)
class TokenPut:
    created: bool
    changed: bool
    #: the secret when this call generated it (to be shown once), else None
    generated_secret: str | None = None


def check_token_name(name: str, *, field: str = "name") -> str:
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_TOKEN_NAME or not name.isprintable():
        raise BadInput(f"{field}: must be 1-{MAX_TOKEN_NAME} printable characters", field=field)
    return name


def check_token_secret(secret: str, *, field: str = "secret") -> str:
    if len(secret) < MIN_TOKEN_SECRET:
        raise BadInput(f"{field}: must be at least {MIN_TOKEN_SECRET} characters", field=field)
    if not secret.isprintable() or secret != secret.strip():
        raise BadInput(f"{field}: printable characters without surrounding spaces", field=field)
    return secret


def check_permissions(permissions: Iterable[Permission], *, field: str = "permissions") -> list[Permission]:
    chosen = sorted(set(permissions))
    if not chosen:
        raise BadInput(f"{field}: at least one permission", field=field)
    return chosen


def expiry_from(expires_in: int | None, *, now: int, field: str = "expires_in") -> int | None:
    if expires_in is None:
        return None
    if not 1 <= expires_in <= MAX_EXPIRES_IN:
        raise BadInput(f"{field}: must be 1 to {MAX_EXPIRES_IN} seconds", field=field)
    return now + expires_in * 1000


class Provisioning:
    def __init__(self, principals: Principals, audit: Audit | None = None, *, key: bytes) -> None:
        self.principals = principals
        self.audit = audit
        self.key = key

    async def put_token(
        self,
        org_id: str,
        name: str,
        secret: str | None,
        permissions: Iterable[Permission],
        *,
        expires_at: int | None = None,
        field: str = "token",
    ) -> TokenPut:
        """Create a token, or update an existing one's permissions, expiry and (when given) secret."""
        check_identifier(org_id, field=f"{field}.org", pattern=OBJECT_ID)
        check_token_name(name, field=f"{field}.name")
        chosen = check_permissions(permissions, field=f"{field}.permissions")
        if secret is not None:
            check_token_secret(secret, field=f"{field}.secret")
        if not await self.principals.organization_exists(org_id):
            raise NotFound(f"{field}.org: organization '{org_id}' not found", field=f"{field}.org")
        generated = None
        if secret is None and not await self.principals.token_exists(org_id, name):
            generated = secret = new_secret()
        digest = token_hash(secret, self.key) if secret else None
        # the same secret again (a fixture applied twice) replaces nothing worth an audit event
        same = await self.principals.find_token(digest) if digest else None
        unchanged = (
            same is not None and (same[1].org_id, same[1].name) == (org_id, name) and not same[1].revoked_at
        )
        try:
            created = await self.principals.upsert_token(org_id, name, digest, chosen, expires_at)
        except SecretInUse:
            raise Conflict(
                f"{field}.secret: already in use by another token", field=f"{field}.secret"
            ) from None
        if self.audit is not None and (created or (secret is not None and not unchanged)):
            action = "token.created" if created else "token.secret_replaced"
            detail = {"permissions": [p.value for p in chosen], "expiresAt": expires_at}
            await self.audit.record(action, org_id=org_id, target=name, detail=detail)
        changed = created or (secret is not None and not unchanged)
        return TokenPut(created=created, changed=changed, generated_secret=generated)

    async def create_token(
        self,
        org_id: str,
        name: str,
        secret: str | None,
        permissions: Iterable[Permission],
        *,
        expires_in: int | None = None,
    ) -> str:
        """A new token (refused when the name is taken); returns its secret, to be shown once."""
        if await self.principals.token_exists(org_id, name):
            raise Conflict(f"name: organization '{org_id}' already has a token '{name}'", field="name")
        secret = secret or new_secret()
        expires_at = expiry_from(expires_in, now=now_ms())
        await self.put_token(org_id, name, secret, permissions, expires_at=expires_at, field="token")
        return secret

    async def revoke_token(self, org_id: str, name: str) -> None:
        if not await self.principals.revoke_token(org_id, name, now_ms()):
            raise NotFound(f"token '{org_id}/{name}' not found or already revoked", field="name")
        if self.audit is not None:
            await self.audit.record("token.revoked", org_id=org_id, target=name)

    async def list_tokens(self, org_id: str | None = None) -> list[TokenRecord]:
        return await self.principals.list_tokens(org_id)
