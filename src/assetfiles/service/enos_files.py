"""The EnOS face's file rules: which file a request names, whether the caller may have it.

A file is named by its ``enos-connect://`` URI, its category and the asset (``assetId``) or
device (``productKey`` + ``deviceKey``) it belongs to. It belongs to an asset when it is
associated with that asset, or was uploaded by a device that feeds the asset; to a device when
that device uploaded it. Anything else, and any other organization's file, is "not found".
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from assetfiles.errors import BadInput, Forbidden, NotFound
from assetfiles.model import (
    ENOS_FILE_URI,
    OBJECT_ID,
    Content,
    Delivery,
    DeviceRef,
    Permission,
    Principal,
    check_identifier,
)
from assetfiles.service.access import require
from assetfiles.service.contents import ContentService
from assetfiles.service.ports import Assets, Contents

CATEGORIES = ("feature", "ota")


@dataclass(frozen=True)
class Owner:
    """The asset or the device a request names a file through."""

    asset_id: str | None = None
    device: DeviceRef | None = None

    def __str__(self) -> str:
        return f"asset '{self.asset_id}'" if self.asset_id else f"device '{self.device}'"


def required(value: str | None, name: str) -> str:
    if value is None or not value.strip():
        raise BadInput(f"{name}: required and must not be empty", field=name)
    return value


def check_org(principal: Principal, org_id: str | None) -> str:
    org_id = required(org_id, "orgId")
    if org_id != principal.org_id:
        raise Forbidden(f"orgId: the access token does not belong to organization '{org_id}'", field="orgId")
    return org_id


def check_file_uri(value: str | None) -> str:
    """``enos-connect://<id>.<ext>`` or ``enos-lark://<id>.<ext>``, as sent or percent-encoded once more."""
    uri = required(value, "fileUri").strip()
    if uri.lower().startswith(("enos-connect%3a", "enos-lark%3a")):
        uri = unquote(uri)
    if not ENOS_FILE_URI.fullmatch(uri):
        raise BadInput(
            f"fileUri: {uri!r} is not an enos-connect:// or enos-lark://<id>.<ext> URI", field="fileUri"
        )
    return uri


def check_category(value: str | None, *, optional: bool = False) -> str | None:
    """``feature`` or ``ota``; ``delete`` takes none (EnOS's delete_file doc and SDKs send none)."""
    if optional and value is None:
        return None
    category = required(value, "category")
    if category not in CATEGORIES:
        raise BadInput(f"category: must be 'feature' or 'ota', not {category!r}", field="category")
    return category


def check_owner(asset_id: str | None, product_key: str | None, device_key: str | None) -> Owner:
    """``assetId`` wins when both ways are given; half a device pair is an error."""
    if asset_id:
        return Owner(asset_id=check_identifier(asset_id, field="assetId", pattern=OBJECT_ID))
    if product_key and not device_key:
        raise BadInput("deviceKey: required with productKey", field="deviceKey")
    if device_key and not product_key:
        raise BadInput("productKey: required with deviceKey", field="productKey")
    if not product_key or not device_key:
        raise BadInput("assetId: required, or productKey and deviceKey", field="assetId")
    return Owner(
        device=DeviceRef(
            check_identifier(product_key, field="productKey"), check_identifier(device_key, field="deviceKey")
        )
    )


class EnosFileService:
    def __init__(self, records: Contents, assets: Assets, contents: ContentService) -> None:
        self.records = records
        self.assets = assets
        self.contents = contents

    @staticmethod
    def authorize(principal: Principal, permission: Permission) -> None:
        """Checked first, so that a caller without the permission learns nothing about the file."""
        require(principal, permission)

    async def find(
        self, principal: Principal, file_uri: str, category: str | None, owner: Owner, permission: Permission
    ) -> Content:
        """The file a request names; ``category`` None (delete) matches either category."""
        require(principal, permission)
        content = await self.records.get_content_by_enos_uri(principal.org_id, file_uri)
        if (
            content is None
            or content.enos is None
            or (category is not None and content.enos.category != category)
            or not await self._belongs(principal.org_id, content, owner)
        ):
            described = file_uri if category is None else f"{file_uri} ({category})"
            raise NotFound(f"fileUri: file {described} not found for {owner}", field="fileUri")
        return content

    async def _belongs(self, org_id: str, content: Content, owner: Owner) -> bool:
        uploader = content.creator.device
        devices = {
            DeviceRef.parse(a.id, field="association") for a in content.associations if a.type == "device"
        }
        if uploader is not None:
            devices.add(uploader)
        if owner.device is not None:
            return owner.device in devices
        assert owner.asset_id is not None
        if any(a.type == "asset" and a.id == owner.asset_id for a in content.associations):
            return True
        return bool(devices & await self.assets.feeding_devices(org_id, owner.asset_id))

    def delivery(self, content: Content) -> Delivery:
        """EnOS answers ``download`` with the bytes: a local file, or the object store's stream."""
        return self.contents.delivery(content, inline=True)

    async def delete(self, principal: Principal, file_uri: str, category: str | None, owner: Owner) -> None:
        content = await self.find(principal, file_uri, category, owner, Permission.WRITE)
        await self.contents.delete(principal, content.id)
