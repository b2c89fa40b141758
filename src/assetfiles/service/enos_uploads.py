"""EnOS integration uploads: measurepoint, attribute and event messages that carry files.

The face hands over the parsed ``enos-message`` and the received file parts (already on disk,
hashed). Everything is checked before anything is stored: the ``files`` map against the parts,
each file's owner (``assetId``, or ``productKey`` + ``deviceKey``), its ``md5`` when given, and
every ``local://`` reference in ``params``. Then each file becomes content with category
``feature`` and a new ``enos-connect://<16 hex>.<ext>`` URI: of the asset, or of the device
(uploaded by it, so the GraphQL listing shows it as that device's content for the assets it
feeds). If storing one file fails, the ones stored before it are deleted again.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import anyio

from assetfiles.errors import BadInput, NotFound
from assetfiles.model import (
    Association,
    Content,
    Creator,
    CreatorKind,
    DeviceRef,
    EnosFacet,
    Permission,
    Principal,
    check_content_name,
)
from assetfiles.service.access import require
from assetfiles.service.contents import ContentService
from assetfiles.service.enos_files import Owner, check_owner
from assetfiles.service.uploads import ContentSpec, UploadService, guess_content_type
from assetfiles.store.catalog import Catalog

#: action -> (feature type, the key of the value map in each params entry)
ACTIONS = {
    "postMeasurepoint": ("measurepoint", "measurepoints"),
    "postAttribute": ("attribute", "attributes"),
    "postEvent": ("event", "events"),
}
MD5_HEX = re.compile(r"^[0-9a-fA-F]{32}$")
EXTENSION = re.compile(r"^[A-Za-z0-9_\-]{1,16}$")
LOCAL = "local://"


@dataclass(frozen=True)
class ReceivedFile:
    """An ``enos-file`` part, streamed to disk by the face."""

    filename: str
    path: Path
    length: int
    md5: str
    sha256: str


@dataclass(frozen=True)
class _Planned:
    part: ReceivedFile
    owner: Owner
    spec: ContentSpec
    creator: Creator


def _owner(entry: dict[str, Any], where: str) -> Owner:
    try:
        return check_owner(entry.get("assetId"), entry.get("productKey"), entry.get("deviceKey"))
    except BadInput as exc:
        raise BadInput(f"{where}.{exc.message}", field=f"{where}.{exc.field}") from None


def _uri_for(name: str, extension: Any) -> str:
    ext = str(extension).lstrip(".") if extension else PurePosixPath(name).suffix.lstrip(".")
    ext = ext if EXTENSION.fullmatch(ext or "") else "bin"
    return f"enos-connect://{secrets.token_hex(8)}.{ext}"


class EnosUploadService:
    def __init__(self, catalog: Catalog, uploads: UploadService, contents: ContentService) -> None:
        self.catalog = catalog
        self.uploads = uploads
        self.contents = contents

    async def post(
        self, principal: Principal, action: str, message: Any, parts: list[ReceivedFile]
    ) -> dict[str, str]:
        """Store the message's files; returns each part's file name -> its new fileUri."""
        require(principal, Permission.WRITE)
        if action not in ACTIONS:
            raise BadInput(f"action: must be one of {', '.join(ACTIONS)}, not {action!r}", field="action")
        feature_type, values_key = ACTIONS[action]
        if not isinstance(message, dict):
            raise BadInput("enos-message: must be a JSON object", field="enos-message")
        files = message.get("files") or {}
        if not isinstance(files, dict):
            raise BadInput("enos-message.files: must be an object", field="enos-message.files")
        self._check_params(message.get("params"), values_key, files)
        planned = [await self._plan(principal, feature_type, files, part) for part in parts]
        missing = sorted(set(files) - {part.filename for part in parts})
        if missing:
            raise BadInput(
                f"enos-file: no part for {', '.join(missing)} (listed in enos-message.files)",
                field="enos-file",
            )
        stored: list[Content] = []
        try:
            for item in planned:
                stored.append(
                    await self.uploads.store(
                        principal.org_id,
                        item.spec,
                        item.creator,
                        _chunks(item.part.path),
                        expected_length=item.part.length,
                        expected_sha256=item.part.sha256,
                    )
                )
        except BaseException:
            for content in stored:  # all or nothing
                await self.contents.delete(principal, content.id)
            raise
        pairs = zip(planned, stored, strict=True)
        return {item.part.filename: content.enos.file_uri for item, content in pairs if content.enos}

    @staticmethod
    def _check_params(params: Any, values_key: str, files: dict[str, Any]) -> None:
        if not isinstance(params, list) or not params:
            raise BadInput("enos-message.params: must be a non-empty array", field="enos-message.params")
        for index, entry in enumerate(params):
            where = f"enos-message.params[{index}]"
            if not isinstance(entry, dict):
                raise BadInput(f"{where}: must be an object", field=where)
            _owner(entry, where)
            values = entry.get(values_key)
            if values is None:
                continue  # events may carry only a time; nothing of a file to check
            if not isinstance(values, dict):
                raise BadInput(f"{where}.{values_key}: must be an object", field=f"{where}.{values_key}")
            for key, value in values.items():
                if isinstance(value, str) and value.startswith(LOCAL) and value[len(LOCAL) :] not in files:
                    raise BadInput(
                        f"{where}.{values_key}.{key}: {value} is not in enos-message.files",
                        field=f"{where}.{values_key}.{key}",
                    )

    async def _plan(
        self, principal: Principal, feature_type: str, files: dict[str, Any], part: ReceivedFile
    ) -> _Planned:
        where = f"enos-message.files.{part.filename}"
        entry = files.get(part.filename)
        if not isinstance(entry, dict):
            raise BadInput(
                f"enos-file: part {part.filename!r} is not listed in enos-message.files", field="enos-file"
            )
        feature_id = entry.get("featureId")
        if not isinstance(feature_id, str) or not feature_id:
            raise BadInput(f"{where}.featureId: required", field=f"{where}.featureId")
        md5 = entry.get("md5")
        if md5 is not None:
            if not isinstance(md5, str) or not MD5_HEX.fullmatch(md5):
                raise BadInput(f"{where}.md5: must be 32 hexadecimal characters", field=f"{where}.md5")
            if md5.lower() != part.md5:
                raise BadInput(
                    f"{where}.md5: the file's md5 is {part.md5}, not {md5.lower()}", field=f"{where}.md5"
                )
        owner = _owner(entry, where)
        name = check_content_name(
            str(entry.get("originalFilename") or part.filename), field=f"{where}.originalFilename"
        )
        if owner.asset_id is not None:
            if not await self.catalog.asset_exists(principal.org_id, owner.asset_id):
                raise NotFound(
                    f"{where}.assetId: asset '{owner.asset_id}' not found", field=f"{where}.assetId"
                )
            association = Association("asset", owner.asset_id)
            creator = Creator(CreatorKind.TOKEN, principal.name)
        else:
            device = owner.device
            assert device is not None
            if principal.org_id not in {org for org, _ in await self.catalog.find_devices(device)}:
                raise NotFound(f"{where}.deviceKey: device '{device}' not found", field=f"{where}.deviceKey")
            association = Association("device", str(device))
            creator = Creator(CreatorKind.DEVICE, device=DeviceRef(device.product_id, device.device_id))
        enos = EnosFacet(_uri_for(name, entry.get("fileExt")), "feature", feature_type, feature_id)
        spec = ContentSpec(name, (association,), guess_content_type(name), "file", {}, enos)
        return _Planned(part, owner, spec, creator)


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    async with await anyio.open_file(path, "rb") as handle:
        while chunk := await handle.read(1024 * 1024):
            yield chunk
