"""Reading assets and the devices that feed them."""

from __future__ import annotations

from assetfiles.errors import BadInput, NotFound
from assetfiles.model import Asset, Page, Permission, Principal
from assetfiles.service.access import require
from assetfiles.service.paging import check_pagination
from assetfiles.store.catalog import Catalog, glob_to_like


class AssetService:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    async def get(self, principal: Principal, asset_id: str, *, field: str = "id") -> Asset:
        require(principal, Permission.READ)
        if not isinstance(asset_id, str) or not asset_id:
            raise BadInput(f"{field}: must be a non-empty id", field=field)
        asset = await self.catalog.get_asset(principal.org_id, asset_id)
        if asset is None:
            raise NotFound(f"asset '{asset_id}' not found", field=field)
        return asset

    async def list(
        self, principal: Principal, *, name: str | None, limit: int | None, offset: int | None
    ) -> Page[Asset]:
        require(principal, Permission.READ)
        limit, offset = check_pagination(limit, offset)
        name_like = glob_to_like(name) if name else None
        return await self.catalog.list_assets(principal.org_id, name_like, limit, offset)
