"""The ExoSense source: the documented asset-content workflow over GraphQL.

It sends the documented operations, so it works against the real platform as well as against
assetfiles. Where the server's schema offers assetfiles' additions (``sha256`` and ``expiresAt``
on Content, ``assetsCount``), introspection finds them and the source asks for them too;
introspection refused or failing means "documented fields only". ``assets`` has ExoSense's
own shape (a list, paged until a short page), so ``--all`` works against the platform too.
Where ``assetContents`` returns ``nextCursor`` (an addition), listings follow the cursor, so a
deep page costs what the first one does; otherwise they page by offset to ``totalCount``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import aiohttp

from assetfiles.client.errors import Failed, Fatal, Gone
from assetfiles.client.graphql import GraphQLClient, GraphQLClientError
from assetfiles.client.remote import Origin, RemoteFile, Target
from assetfiles.client.source import Listing

ASSET = """
query asset($assetId: ID!) {
  asset(id: $assetId) { id name meta description signals { channel { id } } }
}
"""

ASSET_CONTENTS = """
query assetContents($filters: ContentFilters, $pagination: Pagination, $id: [ID!],
                    $devices: [AssetContentsDeviceInput]) {
  assetContents(filters: $filters, pagination: $pagination, id: $id, devices: $devices) {
    assetContents {
      id name contentType createdBy { ... on Device { pid identity } ... on User { name } }
      lastModified length%(extra)s
    }
    totalCount%(cursor)s
  }
}
"""

SIGNATURE = """
query assetSignature($filters: ContentFilters, $devices: [AssetContentsDeviceInput]) {
  user: assetContents(filters: $filters, pagination: {limit: 1}) {
    assetContents { id lastModified length } totalCount
  }
  %(devices)s
}
"""
DEVICE_SIGNATURE = """device: assetContents(filters: $filters, pagination: {limit: 1}, devices: $devices) {
    assetContents { id lastModified length } totalCount
  }"""

ASSETS = """
query assets($pagination: Pagination) { assets(pagination: $pagination) { id } }
"""

CONTENT_FIELDS = """
query contentFields {
  __type(name: "Content") { fields { name } }
  queryType: __type(name: "Query") { fields { name } }
  resultType: __type(name: "AssetContentsResult") { fields { name } }
}
"""

#: Documented page size; assetfiles accepts up to 1,000 per page, so larger pages there.
DOCUMENTED_PAGE = 50
ASSETFILES_PAGE = 1000
#: Download URLs resolved per GraphQL request, as aliases of ``content``/``deviceAssetContent``.
RESOLVE_BATCH = 50


def channel_device(channel_id: str) -> str | None:
    """``<product_id>.<device_id>.data_in.<channel>`` -> ``<product_id>.<device_id>``."""
    parts = channel_id.split(".")
    if len(parts) < 4 or not parts[0] or not parts[1]:
        return None
    return f"{parts[0]}.{parts[1]}"


def _epoch(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def classify(exc: GraphQLClientError, what: str) -> Failed | Fatal:
    """A refused token stops the run; NOT_FOUND is gone; anything else fails what was asked."""
    if exc.status in (401, 403) or exc.code == "UNAUTHENTICATED":
        return Fatal(f"the server refused the token ({exc})")
    if exc.code == "NOT_FOUND":
        return Gone(f"{what}: {exc}")
    return Failed(f"{what}: {exc}")


class ExoSenseSource:
    """Lists an asset's files and resolves their download URLs."""

    def __init__(self, client: GraphQLClient, *, resolve_batch: int = RESOLVE_BATCH) -> None:
        self.client = client
        self.resolve_batch = resolve_batch
        self.content_fields: set[str] = set()
        self.query_fields: set[str] = set()
        self.result_fields: set[str] = set()
        self.connected = False

    async def connect(self) -> None:
        """Check the token and learn which additions the server has (one request, once)."""
        if self.connected:
            return
        self.connected = True
        try:
            data, errors = await self.client.execute_partial(CONTENT_FIELDS)
        except (aiohttp.ClientConnectionError, TimeoutError) as exc:
            raise Fatal(f"cannot reach the server: {exc}") from None
        except GraphQLClientError as exc:
            if exc.status in (401, 403):
                raise classify(exc, "connect") from None
            if not exc.graphql:  # a wrong URL path, or a server that is not assetfiles or ExoSense
                raise Fatal(f"no GraphQL API at {self.client.endpoint} ({exc}): check --url") from None
            return  # introspection refused: documented fields only
        if errors:
            return
        known = (
            ("__type", self.content_fields),
            ("queryType", self.query_fields),
            ("resultType", self.result_fields),
        )
        for key, target in known:
            fields = (data.get(key) or {}).get("fields") or []
            target.update(field["name"] for field in fields)

    @property
    def has_digests(self) -> bool:
        return "sha256" in self.content_fields

    @property
    def lists_urls(self) -> bool:
        """assetfiles signs a URL for each listed content (with its expiry): no resolution round trip.
        The documented platform gives URLs through ``content(id)`` only."""
        return "expiresAt" in self.content_fields and "url" in self.content_fields

    async def asset_ids(self) -> list[str]:
        """Every asset the token sees, through ExoSense's ``assets`` query, page by page."""
        if self.query_fields and "assets" not in self.query_fields:  # empty: introspection refused
            raise Fatal("this server has no 'assets' query: name the assets to sync")
        page_size = ASSETFILES_PAGE if "assetsCount" in self.query_fields else DOCUMENTED_PAGE
        ids: list[str] = []
        offset = 0
        while True:
            try:
                page = await self.client.execute(
                    ASSETS, {"pagination": {"limit": page_size, "offset": offset}}
                )
            except GraphQLClientError as exc:
                raise classify(exc, "listing assets") from None
            items = page["assets"] or []
            ids.extend(item["id"] for item in items if item is not None)
            offset += len(items)
            if len(items) < page_size:
                return ids

    async def devices(self, asset_id: str) -> list[str]:
        """The asset's devices, from its signals' channel ids, in first-seen order."""
        try:
            data = await self.client.execute(ASSET, {"assetId": asset_id})
        except GraphQLClientError as exc:
            raise classify(exc, f"asset {asset_id}") from None
        asset = data.get("asset")
        if asset is None:
            raise Gone(f"asset {asset_id}: not found")
        devices: dict[str, None] = {}
        for signal in asset.get("signals") or []:
            device = channel_device(((signal or {}).get("channel") or {}).get("id") or "")
            if device:
                devices[device] = None
        return list(devices)

    async def list_files(
        self,
        asset_id: str,
        content_types: Sequence[str] = (),
        name_glob: str | None = None,
        *,
        tags: bool = True,
    ) -> Listing:
        """User/API content, then the devices' content, each listing paged to its end.

        ``name_glob`` is a hint: sent to servers that have the ``name`` filter (an addition) when
        it only uses ``*`` and ``?``; the caller filters again either way. ``tags=False`` leaves
        the tags out (a sync without tag filters has no use for them; the server saves a fifth
        of a listing's work).
        """
        if name_glob is not None and (not self.has_digests or "[" in name_glob):
            name_glob = None
        # The asset (for its devices) and the user listing are independent: one round trip, not two.
        try:
            async with asyncio.TaskGroup() as group:
                asking = group.create_task(self.devices(asset_id))
                listing = group.create_task(self._listing(asset_id, content_types, None, name_glob, tags))
        except ExceptionGroup as group:  # an unknown asset fails both: say it once, Fatal first
            raise min(group.exceptions, key=lambda exc: not isinstance(exc, Fatal)) from None
        devices, files = asking.result(), listing.result()
        if devices:
            files += await self._listing(asset_id, content_types, devices, name_glob, tags)
        return Listing(files, devices=frozenset(devices))

    async def _listing(
        self,
        asset_id: str,
        content_types: Sequence[str],
        devices: list[str] | None,
        name_glob: str | None,
        tags: bool,
    ) -> list[RemoteFile]:
        extra = " sha256" if self.has_digests else ""
        if self.lists_urls:
            extra += " url expiresAt"
        if tags:
            extra += " tags { name value }"
        keyset = "nextCursor" in self.result_fields
        query = ASSET_CONTENTS % {"extra": extra, "cursor": " nextCursor" if keyset else ""}
        page_size = ASSETFILES_PAGE if self.has_digests else DOCUMENTED_PAGE
        device_inputs = None
        if devices is not None:
            device_inputs = [
                {"product_id": d.split(".", 1)[0], "device_id": d.split(".", 1)[1]} for d in devices
            ]
        seen: dict[str, RemoteFile] = {}
        offset = 0
        cursor: str | None = None
        while True:
            pagination: dict[str, Any] = {"limit": page_size}
            pagination.update({"cursor": cursor} if cursor else {"offset": 0 if keyset else offset})
            variables: dict[str, Any] = {
                "filters": {
                    "contentTypes": list(content_types),
                    "orderBy": "updated_at",
                    "sort": "desc",
                    "association": {"type": "asset", "id": asset_id},
                    **({"name": name_glob} if name_glob else {}),
                },
                "pagination": pagination,
                "id": None,
                "devices": device_inputs,
            }
            try:
                data = await self.client.execute(query, variables)
            except GraphQLClientError as exc:
                raise classify(exc, f"asset {asset_id}") from None
            result = data["assetContents"]
            items = result["assetContents"]
            for item in items:
                remote = self._remote(item, devices)
                seen.setdefault(remote.id, remote)  # a content moving between pages is listed once
            offset += len(items)
            if keyset:
                cursor = result.get("nextCursor")
                if not cursor or not items:
                    return list(seen.values())
            elif not items or offset >= result["totalCount"]:
                return list(seen.values())

    @staticmethod
    def _remote(item: dict[str, Any], devices: list[str] | None) -> RemoteFile:
        creator = item.get("createdBy") or {}
        device = None
        if devices is not None:
            if creator.get("pid") and creator.get("identity"):
                device = f"{creator['pid']}.{creator['identity']}"
            elif len(devices) == 1:
                device = devices[0]
        return RemoteFile(
            id=item["id"],
            name=item["name"],
            origin=Origin.USER if devices is None else Origin.DEVICE,
            length=int(item["length"]),
            last_modified=item["lastModified"],
            content_type=item.get("contentType") or "application/octet-stream",
            tags={tag["name"]: tag.get("value") or "" for tag in item.get("tags") or []},
            device=device,
            sha256=item.get("sha256"),
            target=Target(item["url"], expires_at=_epoch(item.get("expiresAt"))) if item.get("url") else None,
        )

    async def signature(self, asset_id: str, devices: Sequence[str]) -> object:
        """The newest content and the count, of user and device content, in one request: it
        changes whenever a file of the asset is added, changed (it becomes the newest) or deleted."""
        query = SIGNATURE % {"devices": DEVICE_SIGNATURE if devices else ""}
        filters = {"orderBy": "updated_at", "sort": "desc", "association": {"type": "asset", "id": asset_id}}
        variables: dict[str, Any] = {"filters": filters}
        if devices:
            variables["devices"] = [
                {"product_id": d.split(".", 1)[0], "device_id": d.split(".", 1)[1]} for d in devices
            ]
        try:
            data = await self.client.execute(query, variables)
        except GraphQLClientError as exc:
            raise classify(exc, f"asset {asset_id}") from None
        return json.dumps(data, sort_keys=True)

    async def resolve(self, files: Sequence[RemoteFile]) -> dict[str, Target | Failed]:
        """Signed URLs for ``files``, ``resolve_batch`` per request; a failed item gets its error."""
        results: dict[str, Target | Failed] = {}
        for start in range(0, len(files), self.resolve_batch):
            results.update(await self._resolve_batch(files[start : start + self.resolve_batch]))
        return results

    async def _resolve_batch(self, files: Sequence[RemoteFile]) -> dict[str, Target | Failed]:
        expires = " expiresAt" if "expiresAt" in self.content_fields else ""
        declarations: list[str] = []
        fields: list[str] = []
        variables: dict[str, Any] = {}
        results: dict[str, Target | Failed] = {}
        aliases: dict[str, RemoteFile] = {}
        for index, remote in enumerate(files):
            alias = f"f{index}"
            if remote.origin is Origin.USER:
                declarations.append(f"${alias}: ID!")
                fields.append(f"{alias}: content(id: ${alias}) {{ id url name lastModified{expires} }}")
                variables[alias] = remote.id
            elif remote.device:
                product_id, device_id = remote.device.split(".", 1)
                declarations.append(f"${alias}: DeviceAssetContentInput!")
                fields.append(f"{alias}: deviceAssetContent(input: ${alias}) {{ url{expires} }}")
                variables[alias] = {"id": remote.id, "product_id": product_id, "device_id": device_id}
            else:
                results[remote.id] = Failed("the listing does not say which device uploaded it")
                continue
            aliases[alias] = remote
        if not aliases:
            return results
        query = f"query resolveUrls({', '.join(declarations)}) {{ {' '.join(fields)} }}"
        try:
            data, errors = await self.client.execute_partial(query, variables)
        except GraphQLClientError as exc:
            raise classify(exc, "resolving download URLs") from None
        failures = {str(error["path"][0]): error for error in errors if error.get("path")}
        for alias, remote in aliases.items():
            item = data.get(alias)
            if item and item.get("url"):
                results[remote.id] = Target(item["url"], expires_at=_epoch(item.get("expiresAt")))
            else:
                error = failures.get(alias, {})
                code = (error.get("extensions") or {}).get("code")
                message = error.get("message", "no URL returned")
                results[remote.id] = Gone(message) if code == "NOT_FOUND" else Failed(message)
        return results
