"""Declarative seeding: make the catalog hold what a fixture describes, idempotently.

``assetfiles apply`` parses YAML into :class:`Fixture`; unknown keys and bad values are refused
with the path of the offending field before anything is written.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from assetfiles.errors import BadInput
from assetfiles.model import (
    OBJECT_ID,
    Asset,
    Association,
    ChannelId,
    Creator,
    CreatorKind,
    DeviceCredential,
    DeviceRef,
    EnosFacet,
    Permission,
    Quota,
    Signal,
    check_identifier,
    mint_enos_uri,
    now_ms,
)
from assetfiles.service.composition import Services
from assetfiles.service.device_sessions import device_secrets
from assetfiles.service.provisioning import check_token_name, check_token_secret
from assetfiles.service.secrets import hash_device_secret, new_secret, verify_device_secret
from assetfiles.service.uploads import ContentSpec, check_spec, guess_content_type
from assetfiles.store.blobs import StoredBlob
from assetfiles.store.retention import RetentionPolicy

READ_CHUNK = 1024 * 1024


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _as_value_error(check: Callable[[str], object]) -> Callable[[str], str]:
    """Turn a domain check into a pydantic validator, so its message lands at the field's path."""

    def validate(value: str) -> str:
        try:
            check(value)
        except BadInput as exc:
            raise ValueError(exc.message.split(": ", 1)[-1]) from None
        return value

    return validate


Identifier = Annotated[str, AfterValidator(_as_value_error(lambda v: check_identifier(v, field="id")))]
ObjectId = Annotated[
    str, AfterValidator(_as_value_error(lambda v: check_identifier(v, field="id", pattern=OBJECT_ID)))
]
ChannelText = Annotated[str, AfterValidator(_as_value_error(lambda v: ChannelId.parse(v, field="channel")))]
DeviceText = Annotated[str, AfterValidator(_as_value_error(lambda v: DeviceRef.parse(v, field="device")))]


TokenName = Annotated[str, AfterValidator(_as_value_error(lambda v: check_token_name(v, field="name")))]
TokenSecret = Annotated[str, AfterValidator(_as_value_error(lambda v: check_token_secret(v, field="secret")))]


class TokenSpec(_Strict):
    name: TokenName
    secret: TokenSecret | None = None
    permissions: list[Permission] = Field(default_factory=lambda: [Permission.READ], min_length=1)


class ApplicationSpec(_Strict):
    app_key: str = Field(min_length=1, max_length=128)
    app_secret: str | None = None
    policies: list[Literal["asset:read", "asset:write"]] = Field(default_factory=list)


class DeviceSpec(_Strict):
    id: Identifier
    secret: str | None = Field(default=None, min_length=8)
    #: Murano: "enabled" lets the device activate once (a device that activated stays activated;
    #: `assetfiles device enable-activation` lets it activate again)
    activation: Literal["enabled"] | None = None


class ProductSpec(_Strict):
    id: Identifier
    name: str | None = None
    devices: list[DeviceSpec] = Field(default_factory=list)


class SignalSpec(_Strict):
    id: ObjectId
    name: str | None = None
    channel: ChannelText
    properties: dict[str, Any] = Field(default_factory=dict)


class CreatedBy(_Strict):
    user: str | None = Field(default=None, min_length=1, max_length=255)
    device: DeviceText | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> CreatedBy:
        if (self.user is None) == (self.device is None):
            raise ValueError("give exactly one of user or device")
        return self


class ContentEntry(_Strict):
    path: str = Field(min_length=1)
    name: str | None = None
    content_type: str | None = None
    type: str = "file"
    tags: dict[str, str] = Field(default_factory=dict)
    created_by: CreatedBy = Field(default_factory=lambda: CreatedBy(user="admin"))
    enos_category: Literal["feature", "ota"] | None = None


class AssetSpec(_Strict):
    id: ObjectId
    name: str = Field(min_length=1, max_length=255)
    description: str | None = None
    meta: dict[str, Any] = Field(default_factory=dict)
    signals: list[SignalSpec] = Field(default_factory=list)
    content: list[ContentEntry] = Field(default_factory=list)


class QuotaSpec(_Strict):
    # strict: YAML's true is not a number of bytes; the upper bound is check_quota's
    max_total_bytes: int | None = Field(default=None, ge=0, strict=True)
    max_file_bytes: int | None = Field(default=None, ge=0, strict=True)
    content_types: list[str] | None = None

    def quota(self) -> Quota:
        types = tuple(self.content_types) if self.content_types is not None else None
        return Quota(self.max_total_bytes, self.max_file_bytes, types)


class RetentionSpec(_Strict):
    asset: ObjectId | None = None
    content_type: str | None = None
    name_prefix: str | None = Field(default=None, min_length=1, max_length=255)
    # strict: YAML's true is not a number of days; the upper bounds are check_policy's
    delete_after_days: int | None = Field(default=None, ge=0, strict=True)
    keep_per_asset: int | None = Field(default=None, ge=0, strict=True)

    def policy(self, org_id: str) -> RetentionPolicy:
        return RetentionPolicy(
            org_id,
            self.asset,
            self.content_type,
            self.name_prefix,
            self.delete_after_days,
            self.keep_per_asset,
        )


class OrganizationSpec(_Strict):
    id: ObjectId
    name: str | None = None
    #: absent: the quota is left as it is; null: no quota
    quota: QuotaSpec | None = None
    #: absent: the policies are left as they are; a list (empty too) replaces them
    retention: list[RetentionSpec] | None = None
    tokens: list[TokenSpec] = Field(default_factory=list)
    applications: list[ApplicationSpec] = Field(default_factory=list)
    products: list[ProductSpec] = Field(default_factory=list)
    assets: list[AssetSpec] = Field(default_factory=list)


class Fixture(_Strict):
    organizations: list[OrganizationSpec] = Field(default_factory=list)

    @classmethod
    def parse(cls, data: Any) -> Fixture:
        """Validate a loaded YAML document; errors name the path of each bad field."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in error['loc']) or '(top)'}: {error['msg']}"
                for error in exc.errors()
            )
            raise BadInput(f"invalid fixture: {problems}") from None


@dataclass
class ApplyReport:
    """What changed, and the secrets generated for new objects (shown once, never stored)."""

    changes: list[str] = field(default_factory=list)
    generated_secrets: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    async with await anyio.open_file(path, "rb") as handle:
        while chunk := await handle.read(READ_CHUNK):
            yield chunk


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


async def apply_fixture(services: Services, fixture: Fixture, base_dir: Path) -> ApplyReport:
    """Create or update everything in ``fixture``; files are read relative to ``base_dir``."""
    report = ApplyReport()
    _check_files(fixture, base_dir)
    principals = services.stores.principals
    for org in fixture.organizations:
        await principals.upsert_organization(org.id, org.name or org.id)
        if "quota" in org.model_fields_set:
            await services.quotas.set(org.id, org.quota.quota() if org.quota else None)
        if org.retention is not None:
            policies = [spec.policy(org.id) for spec in org.retention]
            if await services.retention.set_policies(org.id, policies):
                report.changes.append(f"retention policies of {org.id} set")
        for token in org.tokens:
            put = await services.provisioning.put_token(
                org.id,
                token.name,
                token.secret,
                token.permissions,
                field=f"organizations[{org.id}].tokens[{token.name}]",
            )
            if put.generated_secret is not None:
                report.generated_secrets.append((f"token {org.id}/{token.name}", put.generated_secret))
            if put.created:
                report.changes.append(f"token {org.id}/{token.name} created")
        for application in org.applications:
            changed, generated = await services.enos_tokens.register(
                org.id, application.app_key, application.app_secret, list(application.policies)
            )
            if generated:
                report.generated_secrets.append(
                    (f"EnOS application {org.id}/{application.app_key}", generated)
                )
            if changed:
                report.changes.append(f"EnOS application {org.id}/{application.app_key} stored")
        for product in org.products:
            await principals.upsert_product(org.id, product.id, product.name)
            for device in product.devices:
                ref = DeviceRef(product.id, device.id)
                secret = device.secret
                is_new = await principals.device_credential(org.id, ref) is None
                if secret is None and is_new:
                    secret = new_secret()
                    report.generated_secrets.append((f"device {org.id}/{ref}", secret))
                if await _apply_device(services, org.id, ref, secret):
                    report.changes.append(f"device {org.id}/{ref} created")
                if device.activation == "enabled" and await _enable_activation(services, org.id, ref):
                    report.changes.append(f"device {org.id}/{ref} enabled for activation")
        for asset in org.assets:
            await _apply_asset(services, org.id, asset, base_dir, report)
    return report


async def _apply_device(services: Services, org_id: str, device: DeviceRef, secret: str | None) -> bool:
    """Create a device or set its secret; True if created. The same secret again changes nothing
    (its sessions and fast-check digest stay), except that a device stored before secrets were
    sealed gets its sealed copy for the EnOS login."""
    principals = services.stores.principals
    box = device_secrets(services.settings.signing_key)
    if secret is None:
        return await principals.upsert_device(org_id, device, None)
    current = await _stored_device(services, org_id, device)
    if current is not None and current.secret_hash is not None:
        if current.sealed_secret is not None and box.open(current.sealed_secret) == secret:
            return False
        stored_hash = current.secret_hash
        if current.sealed_secret is None and await anyio.to_thread.run_sync(
            verify_device_secret, secret, stored_hash
        ):
            await principals.upsert_device(org_id, device, None, box.seal(secret))
            return False
    return await principals.upsert_device(org_id, device, hash_device_secret(secret), box.seal(secret))


async def _stored_device(services: Services, org_id: str, device: DeviceRef) -> DeviceCredential | None:
    """The organization's device of that name, with its stored credential and activation state."""
    found = await services.stores.principals.find_devices(device)
    return next((credential for credential in found if credential.org_id == org_id), None)


async def _enable_activation(services: Services, org_id: str, device: DeviceRef) -> bool:
    """Enable a device that never was: one that activated (or is enabled already) is left alone,
    so that applying the fixture again does not let it activate a second time."""
    principals = services.stores.principals
    current = await _stored_device(services, org_id, device)
    if current is None or current.activation is not None:
        return False
    return await principals.set_device_activation(org_id, device, "enabled")


def _check_files(fixture: Fixture, base_dir: Path) -> None:
    """Refuse the whole fixture before writing anything if one of its files is missing."""
    for org in fixture.organizations:
        for asset in org.assets:
            for index, entry in enumerate(asset.content):
                path = (base_dir / entry.path).resolve()
                if not path.is_file():
                    field_name = f"organizations[{org.id}].assets[{asset.id}].content[{index}].path"
                    raise BadInput(f"{field_name}: {entry.path!r} is not a readable file", field=field_name)


async def _apply_asset(
    services: Services, org_id: str, spec: AssetSpec, base_dir: Path, report: ApplyReport
) -> None:
    signals = tuple(
        Signal(s.id, s.name, ChannelId.parse(s.channel, field="channel"), s.properties) for s in spec.signals
    )
    asset = Asset(org_id, spec.id, spec.name, spec.description, spec.meta, signals)
    await services.stores.assets.upsert_asset(asset)
    for device in asset.devices:
        await services.stores.principals.upsert_device(org_id, device, None)
    for index, entry in enumerate(spec.content):
        where = f"organizations[{org_id}].assets[{spec.id}].content[{index}]"
        path = (base_dir / entry.path).resolve()
        name = entry.name or path.name
        if entry.created_by.device is not None:
            device = DeviceRef.parse(entry.created_by.device, field=f"{where}.created_by.device")
            if device not in asset.devices:
                raise BadInput(
                    f"{where}.created_by.device: {device} does not feed asset {spec.id} through any signal",
                    field=f"{where}.created_by.device",
                )
            association = Association("device", str(device))
            creator = Creator(CreatorKind.DEVICE, device=device)
        else:
            association = Association("asset", spec.id)
            creator = Creator(CreatorKind.USER, name=entry.created_by.user)
        content_type = entry.content_type or guess_content_type(name)
        content_spec = check_spec(
            ContentSpec(name, (association,), content_type, entry.type, entry.tags), prefix=f"{where}."
        )
        existing = await services.stores.contents.find_content_by_name(org_id, association, name)
        if existing is None:
            enos = EnosFacet(mint_enos_uri(name), entry.enos_category) if entry.enos_category else None
            content_spec = ContentSpec(
                name, (association,), content_type, entry.type, entry.tags, enos, "fixture"
            )
            await services.uploads.store(org_id, content_spec, creator, _file_chunks(path))
            report.changes.append(f"content {org_id}/{spec.id}/{name} created")
            continue
        # Hash first: an unchanged file (the usual case on a re-run) is read once and not rewritten.
        bytes_changed = await anyio.to_thread.run_sync(_sha256_of, path) != existing.sha256
        if bytes_changed or existing.content_type != content_type:
            blob = (
                await services.blobs.write(_file_chunks(path), max_length=services.uploads.max_upload_bytes)
                if bytes_changed
                else StoredBlob(existing.sha256, existing.md5, existing.length)
            )
            await services.stores.contents.replace_bytes(
                org_id,
                existing.id,
                sha256=blob.sha256,
                md5=blob.md5,
                length=blob.length,
                content_type=content_type,
                updated_at=now_ms(),
            )
            report.changes.append(f"content {org_id}/{spec.id}/{name} updated")
            if bytes_changed:
                await services.contents.release_bytes(existing.sha256)
        if existing.tags != entry.tags:
            await services.stores.contents.set_tags(org_id, existing.id, dict(entry.tags), now_ms())
            report.changes.append(f"content {org_id}/{spec.id}/{name} tags updated")
