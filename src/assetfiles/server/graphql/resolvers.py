"""Resolvers: translate GraphQL arguments to service calls and domain objects to GraphQL shapes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ariadne import MutationType, ObjectType, QueryType, UnionType
from graphql import GraphQLResolveInfo

from assetfiles.errors import BadInput
from assetfiles.model import Association, Content, CreatorKind, Permission, Principal, Signal
from assetfiles.server.rendering import usage_json
from assetfiles.service.access import require
from assetfiles.service.batching import BatchLoader
from assetfiles.service.composition import Services
from assetfiles.service.contents import ListingFilters
from assetfiles.service.signing import SignedUrl
from assetfiles.service.uploads import MAX_RESERVATIONS_PER_REQUEST, ContentSpec


@dataclass
class ResolverState:
    """Per-request state handed to every resolver."""

    services: Services
    principal: Principal
    base_url: str
    #: ``expiresIn`` by root field alias: two aliases of one content may ask for two lifetimes.
    url_ttl: dict[str, int | None] = field(default_factory=dict)
    signed: dict[tuple[str, int | None], SignedUrl] = field(default_factory=dict)
    #: createContentUpload calls so far in this request (each holds a pending reservation)
    reservations: int = 0
    _contents: BatchLoader[str, Content] | None = None

    @property
    def contents(self) -> BatchLoader[str, Content]:
        """The request's content loader: aliases of ``content`` resolve in one catalog call."""
        if self._contents is None:
            self._contents = self.services.contents.batch(self.principal)
        return self._contents

    def download_url(self, content: Content, info: GraphQLResolveInfo[Any]) -> SignedUrl:
        """One signature per content and lifetime per request, shared by ``url`` and ``expiresAt``.

        The lifetime is the ``expiresIn`` of the root field the content was reached through.
        """
        root = info.path
        while root.prev is not None:
            root = root.prev
        ttl = self.url_ttl.get(str(root.key))
        key = (content.id, ttl)
        if key not in self.signed:
            self.signed[key] = self.services.contents.download_url(content, ttl)
        return self.signed[key]


Info = GraphQLResolveInfo[ResolverState]


query = QueryType()
mutation = MutationType()
content_type = ObjectType("Content")
signal_type = ObjectType("Signal")
creator_union = UnionType("Creator")


def _tags(
    tags: list[dict[str, Any]] | None, *, field: str, values_required: bool
) -> list[tuple[str, str | None]]:
    parsed = []
    for index, tag in enumerate(tags or []):
        if values_required and tag.get("value") is None:
            raise BadInput(f"{field}[{index}].value: must not be null", field=f"{field}[{index}].value")
        parsed.append((tag["name"], tag.get("value")))
    return parsed


def _unique_tags(tags: list[tuple[str, str | None]], *, field: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for name, value in tags:
        if name in result:
            raise BadInput(f"{field}: tag {name!r} is given twice", field=field)
        result[name] = value or ""
    return result


@query.field("asset")
async def resolve_asset(_obj: None, info: Info, id: str) -> Any:
    ctx = info.context
    return await ctx.services.assets.get(ctx.principal, id)


@query.field("assets")
async def resolve_assets(
    _obj: None,
    info: Info,
    filters: dict[str, Any] | None = None,
    ids: list[str | None] | None = None,
    pagination: dict[str, Any] | None = None,
) -> list[Any]:
    ctx = info.context
    pagination = pagination or {}
    if pagination.get("cursor") is not None:
        raise BadInput("pagination.cursor: assets pages by offset only", field="pagination.cursor")
    return await ctx.services.assets.list(
        ctx.principal,
        text=(filters or {}).get("text"),
        ids=ids,
        limit=pagination.get("limit"),
        offset=pagination.get("offset"),
    )


@query.field("currentToken")
async def resolve_current_token(_obj: None, info: Info) -> dict[str, Any]:
    principal = info.context.principal
    return {
        "name": principal.name,
        "organizationId": principal.org_id,
        "permissions": sorted(permission.value for permission in principal.permissions),
        "canWrite": principal.can(Permission.WRITE),
    }


@query.field("organizationUsage")
async def resolve_organization_usage(_obj: None, info: Info) -> dict[str, Any]:
    ctx = info.context
    require(ctx.principal, Permission.READ)
    usage = (await ctx.services.quotas.usage(ctx.principal.org_id))[0]
    return usage_json(usage)


@query.field("assetsCount")
async def resolve_assets_count(
    _obj: None, info: Info, filters: dict[str, Any] | None = None, ids: list[str | None] | None = None
) -> int:
    ctx = info.context
    return await ctx.services.assets.count(ctx.principal, text=(filters or {}).get("text"), ids=ids)


@query.field("assetContents")
async def resolve_asset_contents(
    _obj: None,
    info: Info,
    filters: dict[str, Any] | None = None,
    pagination: dict[str, Any] | None = None,
    id: list[str] | None = None,
    devices: list[dict[str, str] | None] | None = None,
) -> dict[str, Any]:
    ctx = info.context
    filters = filters or {}
    pagination = pagination or {}
    association = filters.get("association")
    listing = ListingFilters(
        content_types=filters.get("contentTypes"),
        order_by=filters.get("orderBy"),
        sort=filters.get("sort"),
        association=(association["type"], association["id"]) if association else None,
        tags=_tags(filters.get("tags"), field="filters.tags", values_required=False),
        name=filters.get("name"),
        modified_since=filters.get("modifiedSince"),
        ids=id,
        devices=(
            None
            if devices is None
            else [(d["product_id"], d["device_id"]) if d is not None else None for d in devices]
        ),
        limit=pagination.get("limit"),
        offset=pagination.get("offset"),
        cursor=pagination.get("cursor"),
    )
    page = await ctx.services.contents.list(ctx.principal, listing)
    return {"assetContents": page.items, "totalCount": page.total, "nextCursor": page.next_cursor}


@query.field("content")
async def resolve_content(_obj: None, info: Info, id: str, expiresIn: int | None = None) -> Any:
    ctx = info.context
    content = await ctx.services.contents.get(ctx.principal, id, batch=ctx.contents)
    ctx.url_ttl[str(info.path.key)] = expiresIn
    return content


@query.field("deviceAssetContent")
async def resolve_device_asset_content(
    _obj: None, info: Info, input: dict[str, str], expiresIn: int | None = None
) -> Any:
    ctx = info.context
    content = await ctx.services.contents.get_device_content(
        ctx.principal, input["id"], (input["product_id"], input["device_id"]), batch=ctx.contents
    )
    ctx.url_ttl[str(info.path.key)] = expiresIn
    return content


@mutation.field("createContentUpload")
async def resolve_create_content_upload(
    _obj: None, info: Info, input: dict[str, Any], expiresIn: int | None = None
) -> dict[str, Any]:
    ctx = info.context
    ctx.reservations += 1
    if ctx.reservations > MAX_RESERVATIONS_PER_REQUEST:
        raise BadInput(
            f"createContentUpload: at most {MAX_RESERVATIONS_PER_REQUEST} per request",
            field="createContentUpload",
        )
    spec = ContentSpec(
        name=input["name"],
        associations=[Association(a["type"], a["id"]) for a in input["associations"]],
        content_type=input.get("contentType"),
        type=input.get("type") or "file",
        tags=_unique_tags(
            _tags(input.get("tags"), field="input.tags", values_required=True), field="input.tags"
        ),
    )
    content_id, url = await ctx.services.uploads.begin(
        ctx.principal, spec, input["length"], input["sha256"], ttl_seconds=expiresIn
    )
    return {
        "id": content_id,
        "uploadUrl": url.absolute(ctx.base_url),
        "method": "PUT",
        "expiresAt": url.expires_at * 1000,
    }


@mutation.field("setContentTags")
async def resolve_set_content_tags(_obj: None, info: Info, id: str, tags: list[dict[str, Any]]) -> Any:
    ctx = info.context
    parsed = _unique_tags(_tags(tags, field="tags", values_required=True), field="tags")
    return await ctx.services.contents.set_tags(ctx.principal, id, parsed)


@mutation.field("deleteContent")
async def resolve_delete_content(_obj: None, info: Info, id: str) -> dict[str, str]:
    ctx = info.context
    await ctx.services.contents.delete(ctx.principal, id)
    return {"id": id}


@signal_type.field("channel")
def resolve_signal_channel(signal: Signal, _info: Info) -> dict[str, Any]:
    return {"id": str(signal.channel), "properties": signal.properties}


@content_type.field("contentType")
def resolve_content_type(content: Content, _info: Info) -> str:
    return content.content_type


@content_type.field("associations")
def resolve_associations(content: Content, _info: Info) -> list[dict[str, str]]:
    return [{"type": a.type, "id": a.id} for a in content.associations]


@content_type.field("tags")
def resolve_tags(content: Content, _info: Info) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in content.tags.items()]


@content_type.field("createdBy")
def resolve_created_by(content: Content, _info: Info) -> dict[str, Any]:
    creator = content.creator
    if creator.kind is CreatorKind.DEVICE and creator.device is not None:
        return {
            "__typename": "Device",
            "pid": creator.device.product_id,
            "identity": creator.device.device_id,
        }
    if creator.kind is CreatorKind.TOKEN:
        return {"__typename": "ApiToken", "name": creator.name or ""}
    return {"__typename": "User", "name": creator.name or ""}


@content_type.field("lastModified")
def resolve_last_modified(content: Content, _info: Info) -> int:
    return content.updated_at


@content_type.field("createdAt")
def resolve_created_at(content: Content, _info: Info) -> int:
    return content.created_at


@content_type.field("url")
def resolve_url(content: Content, info: Info) -> str:
    ctx = info.context
    return ctx.download_url(content, info).absolute(ctx.base_url)


@content_type.field("expiresAt")
def resolve_expires_at(content: Content, info: Info) -> int:
    return info.context.download_url(content, info).expires_at * 1000


@content_type.field("uploadedVia")
def resolve_uploaded_via(content: Content, _info: Info) -> str | None:
    return content.via


@content_type.field("enos")
def resolve_enos(content: Content, _info: Info) -> dict[str, Any] | None:
    if content.enos is None:
        return None
    return {
        "fileUri": content.enos.file_uri,
        "category": content.enos.category,
        "featureType": content.enos.feature_type,
        "featureId": content.enos.feature_id,
    }


@creator_union.type_resolver
def resolve_creator_type(obj: dict[str, Any], *_: Any) -> str:
    return str(obj["__typename"])


BINDABLES = [query, mutation, content_type, signal_type, creator_union]
