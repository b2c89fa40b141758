"""Creating content: signed upload URLs, device uploads, and the one path every byte takes in.

Order of writes: the blob is streamed, verified and made durable first; only then is the catalog
row inserted. A failure at any step leaves no row, and at most an orphan blob for ``gc``.
"""

from __future__ import annotations

import functools
import mimetypes
import uuid
from collections.abc import AsyncIterable, Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from assetfiles.errors import BadInput, Forbidden, NotFound, PayloadTooLarge, RateLimited, UploadRaced
from assetfiles.model import (
    SHA256_HEX,
    Association,
    Content,
    Creator,
    CreatorKind,
    DeviceRef,
    EnosFacet,
    Permission,
    Principal,
    check_content_name,
    now_ms,
)
from assetfiles.service.access import require
from assetfiles.service.audit import Audit
from assetfiles.service.contents import check_association, check_media_type, check_tags
from assetfiles.service.ports import Assets, Contents, PendingUploads, Principals
from assetfiles.service.quotas import Admission, Quotas, storage_full
from assetfiles.service.signing import SignedUrl, UrlSigner
from assetfiles.store.blobs import BlobStore, StoredBlob
from assetfiles.store.quotas import OverQuota
from assetfiles.store.uploads import TooManyPending

#: Upload URLs one request may ask for (GraphQL aliases of createContentUpload, files of one EnOS
#: upload-URL-mode message): each is a pending reservation in the catalog.
MAX_RESERVATIONS_PER_REQUEST = 100
#: The longest an upload URL (and its reservation) may live: unlike a download URL it holds a
#: catalog row and a share of the organization's pending uploads until used or expired.
MAX_UPLOAD_TTL_SECONDS = 24 * 3600


@dataclass(frozen=True)
class WrittenContent:
    """A content whose bytes are durable in the blob store but which the catalog does not list yet."""

    content: Content
    admission: Admission


@dataclass(frozen=True)
class ContentSpec:
    """Everything about a content except its bytes."""

    name: str
    associations: Sequence[Association] = ()
    content_type: str | None = None
    type: str = "file"
    tags: dict[str, str] = field(default_factory=dict)
    enos: EnosFacet | None = None
    #: how the bytes arrive (model.UPLOAD_PATHS)
    via: str | None = None


def guess_content_type(name: str) -> str:
    return mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"


def check_spec(spec: ContentSpec, *, prefix: str = "") -> ContentSpec:
    check_content_name(spec.name, field=f"{prefix}name")
    content_type = check_media_type(
        spec.content_type or guess_content_type(spec.name), field=f"{prefix}contentType"
    )
    if not spec.type or len(spec.type) > 64:
        raise BadInput(f"{prefix}type: must be 1-64 characters", field=f"{prefix}type")
    check_tags(spec.tags, field=f"{prefix}tags")
    associations = tuple(
        check_association(a.type, a.id, field=f"{prefix}associations[{i}]")
        for i, a in enumerate(spec.associations)
    )
    return ContentSpec(spec.name, associations, content_type, spec.type, spec.tags, spec.enos, spec.via)


def spec_record(spec: ContentSpec, creator: Creator) -> dict[str, Any]:
    """A content-to-be as JSON, for a row that waits for its bytes (a reservation, a tus upload)."""
    enos = spec.enos
    return {
        "name": spec.name,
        "content_type": spec.content_type,
        "type": spec.type,
        "tags": spec.tags,
        "associations": [[a.type, a.id] for a in spec.associations],
        "creator": [creator.kind.value, creator.name],
        "device": str(creator.device) if creator.device else None,
        "enos": [enos.file_uri, enos.category, enos.feature_type, enos.feature_id] if enos else None,
        "via": spec.via,
    }


def from_spec_record(record: dict[str, Any]) -> tuple[ContentSpec, Creator]:
    enos = record.get("enos")
    spec = ContentSpec(
        name=record["name"],
        associations=[Association(kind, target) for kind, target in record["associations"]],
        content_type=record["content_type"],
        type=record["type"],
        tags=record["tags"],
        enos=EnosFacet(*enos) if enos else None,
        via=record.get("via"),
    )
    device = record.get("device")
    creator = Creator(
        CreatorKind(record["creator"][0]),
        record["creator"][1],
        device=DeviceRef.parse(device, field="device") if device else None,
    )
    return spec, creator


@dataclass(frozen=True)
class Reservation:
    """A content reserved by ``createContentUpload`` (or an EnOS upload URL), waiting for its bytes."""

    org_id: str
    content_id: str
    spec: ContentSpec
    creator: Creator
    length: int
    sha256: str | None
    md5: str | None
    #: the API token that asked for it: its URL works only while that token does
    token: str | None


@dataclass(frozen=True)
class UploadStores:
    """The records an upload reads and writes: reservations, contents, the assets it may attach
    to and the tokens that minted its URL."""

    pending: PendingUploads
    contents: Contents
    assets: Assets
    principals: Principals


class UploadService:
    def __init__(
        self,
        stores: UploadStores,
        quotas: Quotas,
        blobs: BlobStore,
        signer: UrlSigner,
        max_upload_bytes: int,
        audit: Audit | None = None,
        *,
        max_pending_uploads: int | None = None,
    ) -> None:
        self.max_pending_uploads = max_pending_uploads
        self.audit = audit
        self.quotas = quotas
        self.pending = stores.pending
        self.records = stores.contents
        self.assets = stores.assets
        self.principals = stores.principals
        self.blobs = blobs
        self.signer = signer
        self.max_upload_bytes = max_upload_bytes

    async def check_targets(self, org_id: str, associations: Sequence[Association]) -> None:
        """Content created through the API is attached to existing assets of the caller's organization.

        Device associations are reserved for files a device uploads itself, so that a device
        listing never shows what somebody else uploaded in its name.
        """
        for index, association in enumerate(associations):
            field_name = f"associations[{index}]"
            if association.type != "asset":
                raise BadInput(
                    f"{field_name}.type: only asset associations can be created through the API "
                    "(devices upload their own files)",
                    field=f"{field_name}.type",
                )
            if not await self.assets.asset_exists(org_id, association.id):
                raise NotFound(f"asset '{association.id}' not found", field=f"{field_name}.id")

    async def begin(
        self,
        principal: Principal,
        spec: ContentSpec,
        length: int,
        sha256: str,
        ttl_seconds: int | None = None,
    ) -> tuple[str, SignedUrl]:
        """Reserve a content id and sign a URL that accepts exactly the declared bytes (GraphQL's
        ``createContentUpload``, which the console and ``assetfiles upload`` use too)."""
        require(principal, Permission.WRITE)
        spec = replace(check_spec(spec, prefix=""), via="graphql")
        if not spec.associations:
            raise BadInput("associations: at least one association is required", field="associations")
        if not isinstance(length, int) or length < 0:
            raise BadInput("length: must be a non-negative integer", field="length")
        if length > self.max_upload_bytes:
            raise PayloadTooLarge(
                f"length: {length} bytes exceeds the upload limit of {self.max_upload_bytes}",
                field="length",
            )
        if not isinstance(sha256, str) or not SHA256_HEX.fullmatch(sha256.lower()):
            raise BadInput("sha256: must be 64 hexadecimal characters", field="sha256")
        await self.check_targets(principal.org_id, spec.associations)
        assert spec.content_type is not None
        await self.quotas.admit(principal.org_id, spec.content_type, length)  # refused before any byte
        creator = Creator(principal.kind, principal.name)
        return await self.reserve(
            principal.org_id,
            spec,
            creator,
            length=length,
            sha256=sha256.lower(),
            ttl_seconds=ttl_seconds,
            token=principal.name,
        )

    async def reserve(
        self,
        org_id: str,
        spec: ContentSpec,
        creator: Creator,
        *,
        length: int,
        sha256: str | None = None,
        md5: str | None = None,
        ttl_seconds: int | None = None,
        token: str | None = None,
    ) -> tuple[str, SignedUrl]:
        """Record a pending content (checked spec) and sign the URL its exact bytes are PUT to.

        Nothing is visible until the bytes arrive and match ``length`` and the digests given.
        ``token`` names the API token that asked for it: the URL stores bytes only while that
        token is still valid (not revoked, not expired).
        """
        if ttl_seconds is not None and not 1 <= ttl_seconds <= MAX_UPLOAD_TTL_SECONDS:
            raise BadInput(
                f"expiresIn: an upload URL lives between 1 and {MAX_UPLOAD_TTL_SECONDS} seconds",
                field="expiresIn",
            )
        content_id = str(uuid.uuid4())
        ttl = min(ttl_seconds or self.signer.ttl_seconds, MAX_UPLOAD_TTL_SECONDS)
        url = self.signer.sign(UrlSigner.UPLOAD, org_id, content_id, ttl_seconds=ttl)
        record = {
            **spec_record(spec, creator),
            "length": length,
            "sha256": sha256,
            "md5": md5,
            "token": token,
        }
        try:
            await self.pending.insert_upload(
                content_id, org_id, record, url.expires_at * 1000, max_pending=self.max_pending_uploads
            )
        except TooManyPending as exc:
            raise RateLimited(
                f"uploads: organization '{org_id}' holds {self.max_pending_uploads} unused upload URLs; "
                "use them or let them expire",
                retry_after=exc.retry_after,
            ) from None
        return content_id, url

    async def open_reservation(
        self, content_id: str, org: str | None, expires: str | None, sig: str | None
    ) -> Reservation:
        """The reservation a signed upload URL stands for, while the token that asked for it lasts."""
        org_id = self.signer.verify(UrlSigner.UPLOAD, org, content_id, expires, sig)
        record = await self.pending.get_upload(content_id, org_id)
        if record is None:
            raise NotFound(f"upload '{content_id}' not found or already completed")
        await self.check_minting_token(org_id, record.get("token"))
        spec, creator = from_spec_record(record)
        return Reservation(
            org_id, content_id, spec, creator, record["length"], record.get("sha256"), record.get("md5"),
            record.get("token"),
        )  # fmt: skip

    async def receive(
        self,
        content_id: str,
        org: str | None,
        expires: str | None,
        sig: str | None,
        body: AsyncIterable[bytes],
    ) -> Content:
        """Accept the bytes for a signed upload URL; they must match the declared length and sha256."""
        reservation = await self.open_reservation(content_id, org, expires, sig)
        return await self.store(
            reservation.org_id,
            reservation.spec,
            reservation.creator,
            body,
            expected_length=reservation.length,
            expected_sha256=reservation.sha256,
            expected_md5=reservation.md5,
            content_id=content_id,
            upload_id=content_id,
        )

    async def check_minting_token(self, org_id: str, name: str | None) -> None:
        """An upload URL is only as good as the token that asked for it, now."""
        if name is None:
            return
        token = await self.principals.get_token(org_id, name)
        if token is None or not token.usable(now_ms()):
            raise Forbidden(
                f"upload URL: the token '{name}' that asked for it has been revoked or has expired"
            )

    async def device_upload(
        self,
        principal: Principal,
        spec: ContentSpec,
        body: AsyncIterable[bytes],
        *,
        expected_sha256: str | None,
    ) -> Content:
        """A device stores a file as itself; it becomes device content of the assets it feeds."""
        assert principal.device is not None
        spec = check_spec(spec)
        spec = ContentSpec(
            spec.name,
            (Association("device", str(principal.device)),),
            spec.content_type,
            spec.type,
            spec.tags,
            via="device-api",
        )
        creator = Creator(CreatorKind.DEVICE, device=principal.device)
        return await self.store(principal.org_id, spec, creator, body, expected_sha256=expected_sha256)

    async def store(
        self,
        org_id: str,
        spec: ContentSpec,
        creator: Creator,
        body: AsyncIterable[bytes],
        *,
        expected_length: int | None = None,
        expected_sha256: str | None = None,
        expected_md5: str | None = None,
        content_id: str | None = None,
        upload_id: str | None = None,
    ) -> Content:
        written = await self.write(
            org_id,
            spec,
            creator,
            body,
            expected_length=expected_length,
            expected_sha256=expected_sha256,
            expected_md5=expected_md5,
            content_id=content_id,
        )
        (content,) = await self.commit(org_id, [written], upload_id=upload_id)
        return content

    async def write(
        self,
        org_id: str,
        spec: ContentSpec,
        creator: Creator,
        body: AsyncIterable[bytes],
        *,
        expected_length: int | None = None,
        expected_sha256: str | None = None,
        expected_md5: str | None = None,
        content_id: str | None = None,
    ) -> WrittenContent:
        """Stream, verify and make durable one content's bytes; nothing is visible until :meth:`commit`."""
        spec = check_spec(spec)
        assert spec.content_type is not None
        admission = await self.quotas.admit(org_id, spec.content_type, expected_length)
        limit = self.max_upload_bytes
        if admission.stream_limit is not None and admission.stream_limit < limit:
            limit = admission.stream_limit
        quota_binds = limit < self.max_upload_bytes
        try:
            blob = await self.blobs.write(
                body,
                max_length=limit,
                expected_length=expected_length,
                expected_sha256=expected_sha256,
                expected_md5=expected_md5,
            )
        except PayloadTooLarge:
            if quota_binds:
                raise admission.too_large() from None
            raise
        return self.written(org_id, spec, creator, blob, admission, content_id=content_id)

    def written(
        self,
        org_id: str,
        spec: ContentSpec,
        creator: Creator,
        blob: StoredBlob,
        admission: Admission,
        *,
        content_id: str | None = None,
    ) -> WrittenContent:
        """The content that durable, verified bytes become (checked ``spec``), ready for :meth:`commit`."""
        now = now_ms()
        content = Content(
            id=content_id or str(uuid.uuid4()),
            org_id=org_id,
            name=spec.name,
            content_type=spec.content_type or guess_content_type(spec.name),
            type=spec.type,
            length=blob.length,
            sha256=blob.sha256,
            md5=blob.md5,
            creator=creator,
            created_at=now,
            updated_at=now,
            tags=dict(spec.tags),
            associations=tuple(spec.associations),
            enos=spec.enos,
            via=spec.via,
        )
        return WrittenContent(content, admission)

    async def commit(
        self,
        org_id: str,
        written: Sequence[WrittenContent],
        *,
        upload_id: str | None = None,
        persist: Callable[[Content, int | None], Awaitable[bool]] | None = None,
    ) -> list[Content]:
        """Make written contents visible, all in one catalog transaction: together or not at all.

        A crash before the transaction commits leaves only orphan blobs (``gc`` removes them);
        a crash after it leaves every content complete. ``upload_id`` (a reservation) or
        ``persist`` (a resumable upload) inserts the one content in the transaction that retires
        what it completes, and answers False when that was completed already.
        """
        batch = [item.content for item in written]
        quotas = [item.admission.quota for item in written if item.admission.quota is not None]
        max_total = quotas[0].max_total_bytes if quotas else None
        if upload_id is not None:
            persist = functools.partial(self.pending.complete_upload, upload_id)
        try:
            if persist is not None:
                (content,) = batch
                if not await persist(content, max_total):
                    raise NotFound(f"upload '{upload_id or content.id}' not found or already completed")
            else:
                await self.records.insert_contents(batch, max_total)
        except OverQuota:
            # Another upload took the room while these bytes arrived: nothing is kept.
            for content in batch:
                await self.blobs.remove_unless(
                    content.sha256, functools.partial(self.records.blob_in_use, content.sha256)
                )
            raise storage_full(org_id, quotas[0]) from None
        for content in batch:
            if not await self.blobs.exists(content.sha256):
                # A delete of identical bytes won the race (see LocalBlobStore.remove_unless).
                for created in batch:
                    await self.records.delete_content(org_id, created.id)
                raise UploadRaced("the upload raced with a delete of identical content; retry it")
        if self.audit is not None:
            for content in batch:
                detail = {"name": content.name, "length": content.length, "sha256": content.sha256}
                await self.audit.record(
                    "content.created", org_id=org_id, actor=content.creator, target=content.id, detail=detail
                )
        return batch
