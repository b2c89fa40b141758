"""EnOS integration uploads: measurepoint, attribute and event messages that carry files.

Two modes, as EnOS's SDKs use them:

- **bytes in the request** (the default): the face hands over the parsed ``enos-message`` and the
  received ``enos-file`` parts (already on disk, hashed). Everything is checked before anything
  is stored: the ``files`` map against the parts, each file's owner (``assetId``, or
  ``productKey`` + ``deviceKey``), its ``md5`` when given, and every ``local://`` reference in
  ``params``. Then each file becomes content with category ``feature`` and a new
  ``enos-connect://`` URI, all of them in one catalog transaction: a request's files appear
  together or not at all, even across a crash.
- **upload URLs** (``useLark=true``; the SDKs call it Lark): the message lists the files
  (``fileLength`` and ``md5`` included) and no part carries bytes. Each file is reserved with a
  new ``enos-lark://`` URI and a signed URL that accepts a PUT of exactly those bytes; the file
  appears, under that URI, once they arrive.

A device's file (``productKey`` + ``deviceKey``) is uploaded as that device, so the GraphQL
listing shows it as the device's content for the assets it feeds.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from assetfiles.errors import BadInput, NotFound, PayloadTooLarge
from assetfiles.model import (
    Association,
    Creator,
    CreatorKind,
    DeviceRef,
    EnosFacet,
    Permission,
    Principal,
    check_content_name,
    mint_enos_uri,
)
from assetfiles.service.access import require
from assetfiles.service.contents import check_media_type
from assetfiles.service.enos_files import Owner, check_owner
from assetfiles.service.ports import Assets, Principals
from assetfiles.service.signing import SignedUrl
from assetfiles.service.uploads import (
    MAX_RESERVATIONS_PER_REQUEST,
    ContentSpec,
    UploadService,
    guess_content_type,
)

#: action -> (feature type, the key of the value map in each params entry)
ACTIONS = {
    "postMeasurepoint": ("measurepoint", "measurepoints"),
    "postAttribute": ("attribute", "attributes"),
    "postEvent": ("event", "events"),
}
DEVICE_MEASUREPOINT_METHOD = "thing.measurepoint.post"
MD5_HEX = re.compile(r"^[0-9a-fA-F]{32}$")
LOCAL = "local://"


@dataclass(frozen=True)
class ReceivedFile:
    """An ``enos-file`` part as the face received it: its bytes in ``data`` when small, else
    streamed to the file at ``path``."""

    filename: str
    path: Path | None
    length: int
    md5: str
    sha256: str
    content_type: str | None = None
    data: bytes | None = None


@dataclass(frozen=True)
class UploadUrl:
    """Where the bytes of one file listed in an upload-URL-mode message are to be PUT."""

    filename: str
    file_uri: str
    url: SignedUrl


@dataclass(frozen=True)
class _Planned:
    filename: str
    spec: ContentSpec
    creator: Creator


def _owner(entry: dict[str, Any], where: str) -> Owner:
    try:
        return check_owner(entry.get("assetId"), entry.get("productKey"), entry.get("deviceKey"))
    except BadInput as exc:
        raise BadInput(f"{where}.{exc.message}", field=f"{where}.{exc.field}") from None


def _file_length(entry: dict[str, Any], where: str, limit: int) -> int:
    """``fileLength``: the SDKs send it as a string of digits, the docs as a number."""
    value = entry.get("fileLength")
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise BadInput(f"{where}.fileLength: required, a number of bytes", field=f"{where}.fileLength")
    length = int(value)
    if length > limit:
        raise PayloadTooLarge(
            f"{where}.fileLength: {length} bytes exceeds the limit of {limit}", field=f"{where}.fileLength"
        )
    return length


class EnosUploadService:
    def __init__(self, assets: Assets, principals: Principals, uploads: UploadService) -> None:
        self.assets = assets
        self.principals = principals
        self.uploads = uploads

    @staticmethod
    def authorize(principal: Principal, action: str) -> str:
        """Checked before the body is read: a caller who may not write is refused (Forbidden)
        before sending it.

        Returns the feature type the action posts.
        """
        require(principal, Permission.WRITE)
        if action not in ACTIONS:
            raise BadInput(f"action: must be one of {', '.join(ACTIONS)}, not {action!r}", field="action")
        return ACTIONS[action][0]

    async def post(
        self,
        principal: Principal,
        action: str,
        message: Any,
        parts: list[ReceivedFile],
        via: str = "enos-integration",
    ) -> dict[str, str]:
        """Store the message's files; returns each part's file name -> its new fileUri."""
        files = self._check_message(principal, action, message)
        planned = [await self._plan(principal, action, files, part.filename, part, via) for part in parts]
        missing = sorted(set(files) - {part.filename for part in parts})
        if missing:
            raise BadInput(
                f"enos-file: no part for {', '.join(missing)} (listed in enos-message.files)",
                field="enos-file",
            )
        # Every file's bytes are made durable first, then one catalog transaction lists them all:
        # a crash or an error at any point shows none of them (orphan blobs are left for gc).
        written = [
            await self.uploads.write(
                principal.org_id,
                item.spec,
                item.creator,
                _chunks(part),
                expected_length=part.length,
                expected_sha256=part.sha256,
            )
            for item, part in zip(planned, parts, strict=True)
        ]
        stored = await self.uploads.commit(principal.org_id, written)
        pairs = zip(planned, stored, strict=True)
        return {item.filename: content.enos.file_uri for item, content in pairs if content.enos}

    async def reserve(
        self, principal: Principal, action: str, message: Any, via: str = "enos-integration"
    ) -> list[UploadUrl]:
        """Upload-URL mode: reserve each listed file and sign the URL its bytes are PUT to."""
        files = self._check_message(principal, action, message)
        if len(files) > MAX_RESERVATIONS_PER_REQUEST:
            raise PayloadTooLarge(
                f"enos-message.files: at most {MAX_RESERVATIONS_PER_REQUEST} files per request",
                field="enos-message.files",
            )
        planned = [await self._plan(principal, action, files, name, None, via) for name in files]
        limit = self.uploads.max_upload_bytes
        reserved = []
        for item in planned:
            where = f"enos-message.files.{item.filename}"
            entry = files[item.filename]
            assert item.spec.enos is not None and item.spec.content_type is not None
            length = _file_length(entry, where, limit)
            await self.uploads.quotas.admit(principal.org_id, item.spec.content_type, length)
            _, url = await self.uploads.reserve(
                principal.org_id,
                item.spec,
                item.creator,
                length=length,
                md5=entry["md5"].lower() if entry.get("md5") else None,
            )
            reserved.append(UploadUrl(item.filename, item.spec.enos.file_uri, url))
        return reserved

    async def device_post(
        self, principal: Principal, message: Any, parts: list[ReceivedFile]
    ) -> dict[str, str]:
        """A device's own measurepoint message with its files (the EnOS device HTTP API)."""
        message = as_integration_message(principal, message)
        return await self.post(principal, "postMeasurepoint", message, parts, via="enos-device")

    async def device_reserve(self, principal: Principal, message: Any) -> list[UploadUrl]:
        """The same in upload-URL mode: the device then PUTs each file to its URL."""
        message = as_integration_message(principal, message)
        return await self.reserve(principal, "postMeasurepoint", message, via="enos-device")

    def _check_message(self, principal: Principal, action: str, message: Any) -> dict[str, Any]:
        self.authorize(principal, action)
        if not isinstance(message, dict):
            raise BadInput("enos-message: must be a JSON object", field="enos-message")
        files = message.get("files") or {}
        if not isinstance(files, dict):
            raise BadInput("enos-message.files: must be an object", field="enos-message.files")
        self._check_params(message.get("params"), ACTIONS[action][1], files)
        return files

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
        self,
        principal: Principal,
        action: str,
        files: dict[str, Any],
        filename: str,
        part: ReceivedFile | None,
        via: str,
    ) -> _Planned:
        """Check one listed file (and its part, when the bytes came with the request)."""
        where = f"enos-message.files.{filename}"
        entry = files.get(filename)
        if not isinstance(entry, dict):
            if part is not None:
                message = f"enos-file: part {filename!r} is not listed in enos-message.files"
                raise BadInput(message, field="enos-file")
            raise BadInput(f"{where}: must be an object", field=where)
        feature_id = entry.get("featureId")
        if not isinstance(feature_id, str) or not feature_id:
            raise BadInput(f"{where}.featureId: required", field=f"{where}.featureId")
        md5 = entry.get("md5")
        if md5 is not None:
            if not isinstance(md5, str) or not MD5_HEX.fullmatch(md5):
                raise BadInput(f"{where}.md5: must be 32 hexadecimal characters", field=f"{where}.md5")
            if part is not None and md5.lower() != part.md5:
                raise BadInput(
                    f"{where}.md5: the file's md5 is {part.md5}, not {md5.lower()}", field=f"{where}.md5"
                )
        owner = _owner(entry, where)
        name = check_content_name(
            str(entry.get("originalFilename") or entry.get("fileName") or filename),
            field=f"{where}.originalFilename",
        )
        if owner.asset_id is not None:
            if not await self.assets.asset_exists(principal.org_id, owner.asset_id):
                raise NotFound(
                    f"{where}.assetId: asset '{owner.asset_id}' not found", field=f"{where}.assetId"
                )
            association = Association("asset", owner.asset_id)
            creator = Creator(CreatorKind.TOKEN, principal.name)
        else:
            device = owner.device
            assert device is not None
            if principal.org_id not in {found.org_id for found in await self.principals.find_devices(device)}:
                raise NotFound(f"{where}.deviceKey: device '{device}' not found", field=f"{where}.deviceKey")
            association = Association("device", str(device))
            creator = Creator(CreatorKind.DEVICE, device=DeviceRef(device.product_id, device.device_id))
        extension = entry.get("fileExt")
        scheme = "enos-connect" if part is not None else "enos-lark"
        uri = mint_enos_uri(name, extension if isinstance(extension, str) else None, scheme=scheme)
        enos = EnosFacet(uri, "feature", ACTIONS[action][0], feature_id)
        # The part's own media type is what the sender said the bytes are; only without one is
        # it guessed from the name (a .txt sent as application/octet-stream stays that).
        content_type = part.content_type if part is not None and part.content_type else None
        if content_type is not None:
            content_type = check_media_type(content_type, field="enos-file.Content-Type")
        spec = ContentSpec(
            name, (association,), content_type or guess_content_type(name), "file", {}, enos, via
        )
        return _Planned(filename, spec, creator)


def as_integration_message(principal: Principal, message: Any) -> dict[str, Any]:
    """A device's message (``params`` is one object of measurepoints, files carry no owner: the
    device that sent them owns them) in the integration message's shape, checked the same way."""
    device = principal.device
    assert device is not None, "device messages come from a device's session"
    if not isinstance(message, dict):
        raise BadInput("enos-message: must be a JSON object", field="enos-message")
    method = message.get("method")
    if method is not None and method != DEVICE_MEASUREPOINT_METHOD:
        raise BadInput(
            f"enos-message.method: must be {DEVICE_MEASUREPOINT_METHOD}, not {method!r}",
            field="enos-message.method",
        )
    params = message.get("params")
    if not isinstance(params, dict):
        raise BadInput("enos-message.params: must be an object", field="enos-message.params")
    files = message.get("files") or {}
    if not isinstance(files, dict):
        raise BadInput("enos-message.files: must be an object", field="enos-message.files")
    owner = {"productKey": device.product_id, "deviceKey": device.device_id}
    for name, entry in files.items():
        if isinstance(entry, dict) and any(
            entry.get(key) not in (None, value) for key, value in owner.items()
        ):
            raise BadInput(
                f"enos-message.files.{name}: a device posts only its own files",
                field=f"enos-message.files.{name}",
            )
    return {
        "params": [{**params, **owner}],
        "files": {
            name: {**entry, **owner} if isinstance(entry, dict) else entry for name, entry in files.items()
        },
    }


async def _chunks(part: ReceivedFile) -> AsyncIterator[bytes]:
    if part.data is not None:
        yield part.data
        return
    assert part.path is not None
    async with await anyio.open_file(part.path, "rb") as handle:
        while chunk := await handle.read(1024 * 1024):
            yield chunk
