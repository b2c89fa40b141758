"""The composition root: the one place that builds the stores and hands each service the ones it uses.

Faces, the CLI and the fixture loader get a :class:`Services`; a service never reaches another's
stores, and only this module (and the CLI's direct admin commands) knows which class implements
each port of :mod:`assetfiles.service.ports`.
"""

from __future__ import annotations

from dataclasses import dataclass

import anyio.to_thread
from sqlalchemy import Engine

from assetfiles.config import Settings
from assetfiles.service.access import Access
from assetfiles.service.assets import AssetService
from assetfiles.service.audit import Audit
from assetfiles.service.changes import ChangeFeed
from assetfiles.service.contents import ContentService
from assetfiles.service.device_content import DeviceContentArea
from assetfiles.service.device_sessions import DeviceSessions
from assetfiles.service.enos_files import EnosFileService
from assetfiles.service.enos_tokens import EnosTokenService
from assetfiles.service.enos_uploads import EnosUploadService
from assetfiles.service.health import Health
from assetfiles.service.maintenance import Maintenance
from assetfiles.service.provisioning import Provisioning
from assetfiles.service.quotas import Quotas
from assetfiles.service.resumable import ResumableLimits, ResumableUploads
from assetfiles.service.retention import Retention
from assetfiles.service.shares import ThreadShares
from assetfiles.service.signing import UrlSigner
from assetfiles.service.uploads import UploadService, UploadStores
from assetfiles.store.assets import AssetStore
from assetfiles.store.audit import AuditStore
from assetfiles.store.blobs import BlobBackend, LocalBlobStore
from assetfiles.store.changes import ChangeLog
from assetfiles.store.contents import ContentStore
from assetfiles.store.database import create_engine, migrate
from assetfiles.store.enos import EnosStore
from assetfiles.store.group_commit import GroupCommit
from assetfiles.store.principals import PrincipalStore
from assetfiles.store.quotas import QuotaStore
from assetfiles.store.resumable import ResumableStore
from assetfiles.store.retention import RetentionStore
from assetfiles.store.spool import LocalUploadSpool, UploadSpool
from assetfiles.store.uploads import UploadStore


@dataclass(frozen=True)
class Stores:
    """The SQL stores, one per aggregate, over one engine."""

    engine: Engine
    principals: PrincipalStore
    assets: AssetStore
    contents: ContentStore
    uploads: UploadStore
    quotas: QuotaStore
    #: the group commit the stores whose writes are grouped share (store/group_commit.py)
    writes: GroupCommit

    @classmethod
    def on(cls, engine: Engine) -> Stores:
        writes = GroupCommit(engine)
        return cls(
            engine,
            PrincipalStore(engine, writes),
            AssetStore(engine),
            ContentStore(engine, writes),
            UploadStore(engine, writes),
            QuotaStore(engine),
            writes,
        )


@dataclass
class Services:
    settings: Settings
    #: for the fixture loader (service/seeding.py), which writes every aggregate
    stores: Stores
    blobs: BlobBackend
    audit: Audit
    access: Access
    device_sessions: DeviceSessions
    assets: AssetService
    contents: ContentService
    uploads: UploadService
    resumable: ResumableUploads
    enos_tokens: EnosTokenService
    enos_files: EnosFileService
    device_content: DeviceContentArea
    enos_uploads: EnosUploadService
    maintenance: Maintenance
    health: Health
    provisioning: Provisioning
    quotas: Quotas
    retention: Retention
    shares: ThreadShares
    changes: ChangeFeed

    @classmethod
    async def open(cls, settings: Settings, *, run_migrations: bool = True) -> Services:
        if run_migrations:
            await anyio.to_thread.run_sync(migrate, settings.catalog_url)
        engine = create_engine(settings.catalog_url)
        stores = Stores.on(engine)
        blobs = open_blob_store(settings)
        await blobs.open()
        signer = UrlSigner(settings.signing_key, settings.url_ttl_seconds)
        audit = Audit(AuditStore(engine, stores.writes))
        contents = ContentService(stores.contents, stores.assets, stores.quotas, blobs, signer, audit)
        quotas = Quotas(stores.quotas, stores.principals)
        uploads = UploadService(
            UploadStores(stores.uploads, stores.contents, stores.assets, stores.principals),
            quotas,
            blobs,
            signer,
            settings.max_upload_bytes,
            audit,
            max_pending_uploads=settings.max_pending_uploads_per_org,
        )
        resumable = ResumableUploads(
            ResumableStore(engine),
            open_upload_spool(blobs),
            uploads,
            quotas,
            signer,
            ResumableLimits(
                lifetime_seconds=settings.resumable_lifetime_seconds,
                max_upload_bytes=settings.max_upload_bytes,
                max_pending_per_org=settings.resumable_max_pending_per_org,
                max_pending_per_device=settings.resumable_max_pending_per_device,
                max_chunk_bytes=settings.resumable_max_chunk_bytes,
            ),
        )
        enos_tokens = EnosTokenService(
            EnosStore(engine),
            settings.signing_key,
            ttl_seconds=settings.enos_token_ttl_seconds,
            window_seconds=settings.enos_timestamp_window_seconds,
            refresh_grace_seconds=settings.enos_refresh_grace_seconds,
        )
        enos_tokens.audit = audit
        return cls(
            settings=settings,
            stores=stores,
            blobs=blobs,
            audit=audit,
            access=Access(stores.principals, audit, key=settings.signing_key),
            device_sessions=DeviceSessions(stores.principals, audit, key=settings.signing_key),
            assets=AssetService(stores.assets),
            contents=contents,
            uploads=uploads,
            resumable=resumable,
            enos_tokens=enos_tokens,
            enos_files=EnosFileService(stores.contents, stores.assets, contents),
            device_content=DeviceContentArea(stores.assets, stores.contents, contents),
            enos_uploads=EnosUploadService(stores.assets, stores.principals, uploads),
            maintenance=Maintenance(
                stores.contents,
                blobs,
                settings.data_dir / "tmp",
                expired_uploads=lambda dry_run: resumable.collect_expired(dry_run=dry_run),
            ),
            health=Health(engine, blobs),
            provisioning=Provisioning(stores.principals, audit, key=settings.signing_key),
            quotas=quotas,
            retention=Retention(RetentionStore(engine), stores.assets, contents),
            shares=ThreadShares(settings.catalog_threads_per_org),
            changes=ChangeFeed(
                ChangeLog(engine),
                max_streams=settings.events_max_streams,
                max_streams_per_org=settings.events_max_streams_per_org,
                retention_days=settings.events_retention_days,
            ),
        )

    async def close(self) -> None:
        await self.audit.flush()
        await self.blobs.close()
        self.stores.contents.close()
        await anyio.to_thread.run_sync(self.stores.engine.dispose)


def open_blob_store(settings: Settings) -> BlobBackend:
    """The local blob directory, or S3-compatible storage when ``blob_url`` is set."""
    if settings.blob_url:
        from assetfiles.store.s3 import S3BlobStore, S3Location  # only deployments on S3 import botocore

        return S3BlobStore(
            S3Location.parse(settings.blob_url),
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
        )
    return LocalBlobStore(
        settings.blob_path,
        group_read=settings.blob_group_read,
        cache_bytes=settings.small_blob_cache_bytes,
    )


def open_upload_spool(blobs: BlobBackend) -> UploadSpool:
    """Where resumable uploads keep their bytes: beside the blobs, in the directory or the bucket."""
    if isinstance(blobs, LocalBlobStore):
        return LocalUploadSpool(blobs)
    from assetfiles.store.s3 import S3BlobStore
    from assetfiles.store.s3_spool import S3UploadSpool

    assert isinstance(blobs, S3BlobStore)
    return S3UploadSpool(blobs)
