"""A Murano device's content area (``GET /provision/download``): what it may list and download.

On the platform a product's content area holds what the product's operators put there for its
devices (firmware, configuration). In assetfiles that is the content people and applications put
on the assets the device feeds: a device lists the names of those files and downloads one by its
name. Where two of them share a name, the most recently updated one is the one listed and served.
A device's own uploads are not in its content area (they are reached through the assets' listings,
as everywhere). At most ``MAX_LISTED`` names are listed, newest first.
"""

from __future__ import annotations

from assetfiles.errors import NotFound
from assetfiles.model import Association, Content, ContentQuery, Delivery, OrderBy, Principal
from assetfiles.service.contents import ContentService
from assetfiles.service.ports import Assets, Contents

MAX_LISTED = 1000


class DeviceContentArea:
    def __init__(self, assets: Assets, records: Contents, contents: ContentService) -> None:
        self.assets = assets
        self.records = records
        self.contents = contents

    async def listing(self, principal: Principal) -> list[Content]:
        """The device's content area, one content per name, newest first."""
        assert principal.device is not None
        newest: dict[str, Content] = {}
        for asset_id in await self.assets.assets_fed_by(principal.org_id, principal.device):
            query = ContentQuery(
                principal.org_id,
                association=Association("asset", asset_id),
                order_by=OrderBy.UPDATED_AT,
                descending=True,
                limit=MAX_LISTED,
            )
            for content in (await self.records.list_contents(query)).items:
                known = newest.get(content.name)
                if known is None or (content.updated_at, content.id) > (known.updated_at, known.id):
                    newest[content.name] = content
        ordered = sorted(newest.values(), key=lambda content: (-content.updated_at, content.name))
        return ordered[:MAX_LISTED]

    async def find(self, principal: Principal, name: str) -> Content:
        for content in await self.listing(principal):
            if content.name == name:
                return content
        raise NotFound(f"id: no content '{name}' for this device", field="id")

    def delivery(self, content: Content) -> Delivery:
        """The device's download answers with the bytes (a local file, or the object store's stream)."""
        return self.contents.delivery(content, inline=True)
