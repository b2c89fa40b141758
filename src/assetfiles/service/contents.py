"""Listing, reading, tagging, deleting and downloading content."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from assetfiles.errors import BadInput, NotFound
from assetfiles.model import (
    MAX_NAME_LENGTH,
    Association,
    Content,
    ContentQuery,
    Delivery,
    DeviceRef,
    OrderBy,
    Page,
    Permission,
    Principal,
    Redirect,
    StoredFile,
    check_identifier,
    iso_to_ms,
    now_ms,
)
from assetfiles.service.access import require
from assetfiles.service.audit import Audit
from assetfiles.service.batching import BatchLoader
from assetfiles.service.paging import CURSOR_FIELD, check_pagination, decode_cursor, encode_cursor
from assetfiles.service.ports import Assets, Contents, QuotaRecords
from assetfiles.service.signing import SignedUrl, UrlSigner
from assetfiles.store.blobs import BlobStore

ASSOCIATION_TYPES = ("asset", "device")
MAX_TAG_NAME = 255
MAX_TAG_VALUE = 1024
#: Tags one content may carry.
MAX_TAGS_PER_CONTENT = 100
MAX_CONTENT_TYPE = 255
#: Bounds on a listing's filters: each becomes a term of one SQL expression, and databases cap
#: those (SQLite's expression depth, PostgreSQL's stack), so thousands of them would fail as internal errors.
MAX_FILTER_CONTENT_TYPES = 100
MAX_FILTER_TAGS = 50
MAX_NAME_GLOB = 1024


@dataclass(frozen=True)
class ListingFilters:
    """A listing request as a face received it, before validation."""

    content_types: Sequence[str] | None = None
    order_by: str | None = None
    sort: str | None = None
    association: tuple[str, str] | None = None
    tags: Sequence[tuple[str, str | None]] = ()
    name: str | None = None
    modified_since: str | None = None
    ids: Sequence[str] | None = None
    devices: Sequence[tuple[str, str] | None] | None = None
    limit: int | None = None
    offset: int | None = None
    cursor: str | None = None


def check_media_type(value: str, *, field: str) -> str:
    """A media type as a header can carry it: bounded, with a slash, printable ASCII only.

    Anything else would be stored and then break every download of the content (a header
    cannot carry it), so it is refused at upload, on every path.
    """
    if (
        len(value) > MAX_CONTENT_TYPE
        or "/" not in value
        or any(not " " <= char <= "~" for char in value)
        or not value.split("/", 1)[0].strip()
    ):
        raise BadInput(f"{field}: {value!r} is not a media type (printable ASCII, type/subtype)", field=field)
    return value


def check_tags(tags: dict[str, str], *, field: str = "tags") -> dict[str, str]:
    if len(tags) > MAX_TAGS_PER_CONTENT:
        raise BadInput(f"{field}: at most {MAX_TAGS_PER_CONTENT} tags per content", field=field)
    for name, value in tags.items():
        if not isinstance(name, str) or not name or len(name) > MAX_TAG_NAME:
            raise BadInput(f"{field}: tag names must be 1-{MAX_TAG_NAME} characters", field=field)
        if not isinstance(value, str) or len(value) > MAX_TAG_VALUE:
            raise BadInput(
                f"{field}.{name}: tag values must be strings of at most {MAX_TAG_VALUE}", field=field
            )
    return tags


def check_association(kind: str, target: str, *, field: str) -> Association:
    if kind not in ASSOCIATION_TYPES:
        raise BadInput(
            f"{field}.type: must be one of {', '.join(ASSOCIATION_TYPES)}, got {kind!r}",
            field=f"{field}.type",
        )
    if not isinstance(target, str) or not target or len(target) > MAX_NAME_LENGTH:
        raise BadInput(f"{field}.id: must be a non-empty id", field=f"{field}.id")
    if kind == "device":
        DeviceRef.parse(target, field=f"{field}.id")
    return Association(kind, target)


class ContentService:
    def __init__(
        self,
        records: Contents,
        assets: Assets,
        usage: QuotaRecords,
        blobs: BlobStore,
        signer: UrlSigner,
        audit: Audit | None = None,
    ) -> None:
        self.audit = audit
        self.records = records
        self.assets = assets
        self.usage = usage
        self.blobs = blobs
        self.signer = signer

    async def list(self, principal: Principal, filters: ListingFilters) -> Page[Content]:
        require(principal, Permission.READ)
        query = self._query(principal.org_id, filters)
        asset_id = query.association.id if query.association and query.association.type == "asset" else None
        if query.devices is not None:
            # Device content is listed for an asset only for the devices that feed it.
            if asset_id is None:
                raise BadInput(
                    "association: an asset association is required when devices are given",
                    field="association",
                )
            feeding = await self.assets.feeding_devices(principal.org_id, asset_id)
            wanted = tuple(device for device in query.devices if device in feeding)
            if not wanted:
                await self._check_asset(principal.org_id, asset_id)
                return Page([], 0)
            query = replace(query, devices=wanted, association=None)
        page = await self.records.list_contents(query)
        if asset_id is not None and page.total == 0:
            await self._check_asset(principal.org_id, asset_id)  # an empty answer must not hide a typo
        if page.last_key is not None:
            value, pk = page.last_key
            page = replace(page, next_cursor=encode_cursor(query.order_by.value, query.descending, value, pk))
        return page

    async def _check_asset(self, org_id: str, asset_id: str) -> None:
        if not await self.assets.asset_exists(org_id, asset_id):
            raise NotFound(f"asset '{asset_id}' not found", field="association.id")

    @staticmethod
    def _query(org_id: str, filters: ListingFilters) -> ContentQuery:
        limit, offset = check_pagination(filters.limit, filters.offset)
        order_by = OrderBy.UPDATED_AT
        if filters.order_by is not None:
            try:
                order_by = OrderBy(filters.order_by)
            except ValueError:
                choices = ", ".join(o.value for o in OrderBy)
                raise BadInput(
                    f"orderBy: must be one of {choices}, got {filters.order_by!r}",
                    field="orderBy",
                ) from None
        sort = (filters.sort or "desc").lower()
        if sort not in ("asc", "desc"):
            raise BadInput(f"sort: must be asc or desc, got {filters.sort!r}", field="sort")
        association = (
            check_association(*filters.association, field="association") if filters.association else None
        )
        devices: tuple[DeviceRef, ...] | None = None
        if filters.devices is not None:
            parsed = []
            for index, device in enumerate(filters.devices):
                field = f"devices[{index}]"
                if device is None:
                    raise BadInput(f"{field}: must not be null", field=field)
                parsed.append(
                    DeviceRef(
                        check_identifier(device[0], field=f"{field}.product_id"),
                        check_identifier(device[1], field=f"{field}.device_id"),
                    )
                )
            devices = tuple(dict.fromkeys(parsed))
        content_types = [t for t in filters.content_types or () if t]
        if len(content_types) > MAX_FILTER_CONTENT_TYPES:
            raise BadInput(
                f"contentTypes: at most {MAX_FILTER_CONTENT_TYPES} media types",
                field="contentTypes",
            )
        for index, content_type in enumerate(content_types):
            check_media_type(content_type, field=f"contentTypes[{index}]")
        if len(filters.tags) > MAX_FILTER_TAGS:
            raise BadInput(f"tags: at most {MAX_FILTER_TAGS} tags", field="tags")
        if filters.name is not None and len(filters.name) > MAX_NAME_GLOB:
            raise BadInput(f"name: at most {MAX_NAME_GLOB} characters", field="name")
        for index, tag in enumerate(filters.tags):
            if not tag[0]:
                raise BadInput(f"tags[{index}].name: must not be empty", field=f"tags[{index}].name")
        if filters.name is not None and not filters.name:
            raise BadInput("name: must not be empty", field="name")
        after = None
        if filters.cursor is not None:
            if offset:
                raise BadInput(f"{CURSOR_FIELD}: give a cursor or an offset, not both", field=CURSOR_FIELD)
            after = decode_cursor(filters.cursor, order_by.value, sort == "desc")
        return ContentQuery(
            org_id=org_id,
            association=association,
            devices=devices,
            ids=tuple(filters.ids) if filters.ids is not None else None,
            content_types=tuple(content_types),
            tags=tuple(filters.tags),
            name_glob=filters.name,
            modified_since=(
                iso_to_ms(filters.modified_since, field="modifiedSince")
                if filters.modified_since is not None
                else None
            ),
            order_by=order_by,
            descending=sort == "desc",
            limit=limit,
            offset=offset,
            after=after,
        )

    def batch(self, principal: Principal) -> BatchLoader[str, Content]:
        """A loader that fetches the contents asked for in one tick together (one request's scope)."""
        return BatchLoader(lambda ids: self.records.get_contents(principal.org_id, ids))

    async def get(
        self,
        principal: Principal,
        content_id: str,
        *,
        field: str = "id",
        batch: BatchLoader[str, Content] | None = None,
    ) -> Content:
        require(principal, Permission.READ)
        if not content_id:
            raise BadInput(f"{field}: must be a non-empty id", field=field)
        if batch is not None:
            content = await batch.load(content_id)
        else:
            content = await self.records.get_content(principal.org_id, content_id)
        if content is None:
            raise NotFound(f"content '{content_id}' not found", field=field)
        return content

    async def get_device_content(
        self,
        principal: Principal,
        content_id: str,
        device: tuple[str, str],
        *,
        batch: BatchLoader[str, Content] | None = None,
    ) -> Content:
        """Content uploaded by that device; anything else is 'not found', as for unknown ids."""
        ref = DeviceRef(
            check_identifier(device[0], field="product_id"),
            check_identifier(device[1], field="device_id"),
        )
        try:
            content = await self.get(principal, content_id, field="id", batch=batch)
        except NotFound:
            content = None
        if content is None or content.creator.device != ref:
            raise NotFound(f"content '{content_id}' of device '{ref}' not found", field="id")
        return content

    def download_url(self, content: Content | StoredFile, ttl_seconds: int | None = None) -> SignedUrl:
        """Our signed transfer URL, or, when the blob store serves bytes itself (S3), its URL with
        the same expiry, so that downloads never pass through Python."""
        signed = self.signer.sign(UrlSigner.DOWNLOAD, content.org_id, content.id, ttl_seconds=ttl_seconds)
        delivery = self.delivery(content, expires_at=signed.expires_at)
        return SignedUrl(delivery.url, signed.expires_at) if isinstance(delivery, Redirect) else signed

    def delivery(
        self, stored: StoredFile | Content, *, inline: bool = False, expires_at: int | None = None
    ) -> Delivery:
        """How a content's bytes reach the caller (see :meth:`BlobStore.deliver`); ``inline`` for
        an API that answers with the bytes themselves."""
        if expires_at is None:
            expires_at = int(time.time()) + self.signer.ttl_seconds
        return self.blobs.deliver(
            stored.sha256,
            name=stored.name,
            content_type=stored.content_type,
            expires_at=expires_at,
            inline=inline,
        )

    async def open_download(
        self, content_id: str, org: str | None, expires: str | None, sig: str | None
    ) -> tuple[StoredFile, Delivery]:
        """Check a signed download URL; the file and how its bytes reach the caller."""
        org_id = self.signer.verify(UrlSigner.DOWNLOAD, org, content_id, expires, sig)
        stored = await self.records.get_stored_file(org_id, content_id)
        if stored is None:
            raise NotFound(f"content '{content_id}' not found")
        return stored, self.delivery(stored)

    async def rows_under(
        self, principal: Principal, targets: Sequence[Sequence[tuple[str, str]] | None]
    ) -> tuple[int, ...]:
        """For each listing's targets (None: the whole organization), how many of the caller's
        organization's contents they hold: the rows a filtered listing of them reads. Two reads
        of kept counts, whatever the number of listings."""
        named = sorted({target for group in targets if group is not None for target in group})
        sizes = await self.records.target_sizes(principal.org_id, named) if named else {}
        whole = 0
        if any(group is None for group in targets):
            whole = (await self.usage.usage(principal.org_id)).get(principal.org_id, (0, 0, None))[1]
        return tuple(
            whole if group is None else sum(sizes.get(target, 0) for target in group) for group in targets
        )

    async def set_tags(self, principal: Principal, content_id: str, tags: dict[str, str]) -> Content:
        require(principal, Permission.WRITE)
        check_tags(tags)
        if not await self.records.set_tags(principal.org_id, content_id, tags, now_ms()):
            raise NotFound(f"content '{content_id}' not found", field="id")
        if self.audit is not None:
            await self.audit.record(
                "content.tags_changed", org_id=principal.org_id, actor=principal, target=content_id,
                detail={"tags": tags},
            )  # fmt: skip
        return await self.get(principal, content_id)

    async def delete(
        self, principal: Principal, content_id: str, *, unmodified_since: int | None = None
    ) -> None:
        """Delete the content; its bytes go too unless another content has the same ones.

        With ``unmodified_since`` (epoch ms), only if it was not modified after that (retention
        deletes what its plan saw, not what a user changed meanwhile): otherwise NotFound.
        """
        require(principal, Permission.WRITE)
        sha256 = await self.records.delete_content(
            principal.org_id, content_id, unmodified_since=unmodified_since
        )
        if sha256 is None:
            raise NotFound(f"content '{content_id}' not found", field="id")
        if self.audit is not None:
            await self.audit.record(
                "content.deleted", org_id=principal.org_id, actor=principal, target=content_id
            )
        await self.release_bytes(sha256)

    async def release_bytes(self, sha256: str) -> None:
        """Remove a blob that no content row references any more."""
        await self.blobs.remove_unless(sha256, lambda: self.records.blob_in_use(sha256))
