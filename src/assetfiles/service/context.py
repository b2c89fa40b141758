"""Wiring: one object holding the store adapters and the services built on them."""

from __future__ import annotations

from dataclasses import dataclass

import anyio.to_thread

from assetfiles.config import Settings
from assetfiles.service.access import Access
from assetfiles.service.assets import AssetService
from assetfiles.service.contents import ContentService
from assetfiles.service.signing import UrlSigner
from assetfiles.service.uploads import UploadService
from assetfiles.store.blobs import LocalBlobStore
from assetfiles.store.catalog import Catalog
from assetfiles.store.database import create_engine, migrate


@dataclass
class Services:
    settings: Settings
    catalog: Catalog
    access: Access
    assets: AssetService
    contents: ContentService
    uploads: UploadService

    @classmethod
    async def open(cls, settings: Settings, *, run_migrations: bool = True) -> Services:
        if run_migrations:
            await anyio.to_thread.run_sync(migrate, settings.catalog_url)
        catalog = Catalog(create_engine(settings.catalog_url))
        blobs = LocalBlobStore(settings.blob_path)
        signer = UrlSigner(settings.signing_key, settings.url_ttl_seconds)
        assets = AssetService(catalog)
        return cls(
            settings=settings,
            catalog=catalog,
            access=Access(catalog),
            assets=assets,
            contents=ContentService(catalog, blobs, signer),
            uploads=UploadService(catalog, blobs, signer, settings.max_upload_bytes),
        )

    async def close(self) -> None:
        await self.catalog.close()
