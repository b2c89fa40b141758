"""Sizes beyond GraphQL's 32-bit Int: the Long scalar carries them as JSON numbers."""

from __future__ import annotations

import asyncio
import uuid

from assetfiles.model import Association, Content, Creator, CreatorKind, now_ms
from assetfiles.store.contents import ContentStore
from assetfiles.store.database import create_engine
from tests.backends import catalog_url
from tests.helpers import Server

FIVE_GIB = 5 * 1024**3 + 123


async def _insert_row(server: Server, content_id: str) -> None:
    """A catalog row for a 5 GiB file (bytes absent: only listing is under test here)."""
    catalog = ContentStore(create_engine(catalog_url(server.data_dir)))
    now = now_ms()
    await catalog.insert_contents(
        [
            Content(
                id=content_id,
                org_id="o-acme",
                name="huge.raw",
                content_type="application/octet-stream",
                type="file",
                length=FIVE_GIB,
                sha256="0" * 64,
                md5="0" * 32,
                creator=Creator(CreatorKind.USER, "test"),
                created_at=now,
                updated_at=now,
                associations=(Association("asset", "a-empty"),),
            )
        ]
    )
    catalog.engine.dispose()


def test_length_above_2_gib_is_a_json_number(server: Server) -> None:
    content_id = str(uuid.uuid4())
    asyncio.run(_insert_row(server, content_id))
    listing = server.gql(
        """query {
          assetContents(
            filters: {association: {type: "asset", id: "a-empty"}, orderBy: length, sort: desc}
            pagination: {limit: 1}
          ) { assetContents { id length } }
        }"""
    )
    assert f'"length":{FIVE_GIB}' in listing.text.replace(" ", "")
    item = listing.json()["data"]["assetContents"]["assetContents"][0]
    assert item == {"id": content_id, "length": FIVE_GIB}
    server.data("mutation($id: ID!) { deleteContent(id: $id) { id } }", {"id": content_id})
