"""The client library follows the server's cursors page by page, over real HTTP."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import assetfiles.client.exosense as exosense
from assetfiles.client import Client
from tests.conftest import LIST_ITEMS, RW
from tests.helpers import Server


def test_the_client_follows_the_cursor(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exosense, "ASSETFILES_PAGE", 4)
    sent: list[dict[str, Any]] = []

    async def run() -> list[str]:
        async with Client(server.base_url, RW) as client:
            source = await client.source()
            original = source.client.execute

            async def recording(query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
                if variables and "pagination" in variables:
                    sent.append(variables["pagination"])
                return await original(query, variables)

            source.client.execute = recording  # type: ignore[method-assign]
            listing = await client.list_files("a-list")
            return [remote.id for remote in listing.files]

    ids = asyncio.run(run())
    assert len(ids) == len(set(ids)) == LIST_ITEMS
    assert len(sent) == -(-LIST_ITEMS // 4) + (1 if LIST_ITEMS % 4 == 0 else 0)
    assert "cursor" not in sent[0] and all("cursor" in item and "offset" not in item for item in sent[1:])
