"""Reading assets and the devices that feed them."""

from __future__ import annotations

from collections.abc import Sequence

from assetfiles.errors import BadInput, NotFound
from assetfiles.model import Asset, Permission, Principal
from assetfiles.service.access import require
from assetfiles.service.paging import MAX_LIMIT, check_pagination
from assetfiles.service.ports import Assets

MAX_TEXT = 256


class AssetService:
    def __init__(self, assets: Assets) -> None:
        self.assets = assets

    async def get(self, principal: Principal, asset_id: str, *, field: str = "id") -> Asset:
        require(principal, Permission.READ)
        if not isinstance(asset_id, str) or not asset_id:
            raise BadInput(f"{field}: must be a non-empty id", field=field)
        asset = await self.assets.get_asset(principal.org_id, asset_id)
        if asset is None:
            raise NotFound(f"asset '{asset_id}' not found", field=field)
        return asset

    async def list(
        self,
        principal: Principal,
        *,
        text: str | None,
        ids: Sequence[str | None] | None,
        limit: int | None,
        offset: int | None,
    ) -> list[Asset]:
        """The assets the caller sees, ExoSense's way: ``ids`` restricts, ``text`` searches name and id."""
        require(principal, Permission.READ)
        limit, offset = check_pagination(limit, offset)
        return await self.assets.list_assets(
            principal.org_id, _check_text(text), _check_ids(ids), limit, offset
        )

    async def count(self, principal: Principal, *, text: str | None, ids: Sequence[str | None] | None) -> int:
        require(principal, Permission.READ)
        return await self.assets.count_assets(principal.org_id, _check_text(text), _check_ids(ids))


def _check_text(text: str | None) -> str | None:
    if text is not None and len(text) > MAX_TEXT:
        raise BadInput(f"text: at most {MAX_TEXT} characters", field="text")
    return text or None


def _check_ids(ids: Sequence[str | None] | None) -> list[str] | None:
    if ids is None:
        return None
    if len(ids) > MAX_LIMIT:
        raise BadInput(f"ids: at most {MAX_LIMIT} ids", field="ids")
    return [asset_id for asset_id in ids if asset_id]
