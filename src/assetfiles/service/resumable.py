"""Resumable uploads (tus 1.0): the rules, whatever carries them.

An upload is created (by an API token with write permission, a device, or the holder of a
``createContentUpload`` reservation), receives its bytes over any number of appends at any
server process, and becomes one content once they are all there, through the same checks as
every other upload (length, sha256 and md5, quotas, dedup, audit, the change feed).

Guarantees, and where each is kept:

- an offset is acknowledged only once its bytes are durable in the spool (``UploadSpool.append``
  returns after fsync or the object store's answer) and the catalog row moved on;
- one append at a time per upload: an append holds the row's lease, renewed while bytes
  stream; a second one meanwhile is refused (Locked), never interleaved;
- the content appears in the transaction that marks the upload complete, after its bytes were
  verified and stored as a blob: a crash before leaves an upload to finish again (the next HEAD
  or PATCH does it), a crash after leaves a complete content;
- every upload expires ``resumable_lifetime_seconds`` after its creation; ``gc`` removes the
  expired ones' bytes and rows. Counts per organization and per device are bounded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import anyio

from assetfiles.errors import (
    AssetfilesError,
    BadInput,
    ChecksumMismatch,
    ClientGone,
    Conflict,
    Forbidden,
    Gone,
    IntegrityMismatch,
    Locked,
    NotFound,
    PayloadTooLarge,
    QuotaExceeded,
    RateLimited,
    RequestTimeout,
)
from assetfiles.model import (
    SHA256_HEX,
    Association,
    Content,
    Creator,
    DeviceRef,
    EnosFacet,
    Permission,
    Principal,
    mint_enos_uri,
    now_ms,
)
from assetfiles.service.access import require
from assetfiles.service.contents import check_tags
from assetfiles.service.quotas import Admission, Quotas
from assetfiles.service.signing import SignedUrl, UrlSigner
from assetfiles.service.uploads import (
    ContentSpec,
    Reservation,
    UploadService,
    check_spec,
    from_spec_record,
    spec_record,
)
from assetfiles.store.blobs import BlobDigests, WriteChecks
from assetfiles.store.resumable import ResumableRecord, ResumableStore, TooManyResumable
from assetfiles.store.spool import UPLOAD_ID, UploadSpool

logger = logging.getLogger("assetfiles.resumable")

TUS_VERSION = "1.0.0"
EXTENSIONS = (
    "creation",
    "creation-with-upload",
    "creation-defer-length",
    "expiration",
    "checksum",
    "termination",
    "concatenation",
)
CHECKSUMS: dict[str, Callable[[], Any]] = {
    "sha1": lambda: hashlib.sha1(usedforsecurity=False),
    "md5": lambda: hashlib.md5(usedforsecurity=False),
    "sha256": hashlib.sha256,
}
#: the Upload-Metadata header, encoded, at most
MAX_METADATA_BYTES = 4096
#: partial uploads one final upload may concatenate
MAX_PARTS = 256
#: an append's hold on its upload; renewed every third of it while bytes arrive
LEASE_SECONDS = 10
#: how long a HEAD waits for an append in progress to end
HEAD_WAIT_SECONDS = 3.0
#: running digests kept per process, so that an upload appended to here is not read again to
#: hash it when it completes (an upload appended to elsewhere is)
HASHES_KEPT = 4096


@dataclass(frozen=True)
class SignedAccess:
    """A caller presenting the upload's own signed URL (an upload made from a reservation)."""

    org_id: str
    upload_id: str


Caller = Principal | SignedAccess


@dataclass(frozen=True)
class Creation:
    """What a creation request asks for, parsed by the face."""

    length: int | None  # None: deferred (Upload-Defer-Length: 1)
    metadata: dict[str, str | None] = field(default_factory=dict)
    #: the Upload-Metadata header as sent, echoed by HEAD
    raw_metadata: str | None = None
    #: "partial", "final", or None
    concat: str | None = None
    #: a final upload's partial uploads, by id
    parts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Upload:
    """A resumable upload as a face shows it."""

    id: str
    org_id: str
    length: int | None
    offset: int
    expires_at: int  # epoch milliseconds
    raw_metadata: str | None
    concat: str | None
    parts: tuple[str, ...]
    content_id: str | None
    #: for uploads made from a reservation: the signed URL that reaches it
    signed: SignedUrl | None = None


@dataclass(frozen=True)
class Checksum:
    algorithm: str
    digest: bytes


#: the metadata key that carries each field of a content
_METADATA_KEYS = {"name": "filename", "contentType": "filetype", "tags": "tags", "associations": "asset"}


class _Body:
    """The chunks of one append, watched: running digests, the chunk's checksum, and how the
    body ended (a client gone mid-body keeps the bytes that arrived, unless a checksum is due)."""

    def __init__(
        self,
        chunks: AsyncIterable[bytes],
        digests: BlobDigests | None,
        checksum: Checksum | None,
        renew: Callable[[], Any],
    ) -> None:
        self.chunks = chunks
        self.digests = digests
        self.checksum = checksum
        self.hasher = CHECKSUMS[checksum.algorithm]() if checksum else None
        self.renew = renew
        self.interrupted: AssetfilesError | None = None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        renewed = time.monotonic()
        try:
            async for chunk in self.chunks:
                if self.digests is not None:
                    self.digests.update(chunk)
                if self.hasher is not None:
                    self.hasher.update(chunk)
                if time.monotonic() - renewed > LEASE_SECONDS / 3:
                    await self.renew()
                    renewed = time.monotonic()
                yield chunk
        except (ClientGone, RequestTimeout) as exc:
            self.interrupted = exc

    def accept(self) -> None:
        """Called by the spool once every chunk arrived: the checksum decides."""
        if self.checksum is None:
            return
        if self.interrupted is not None:
            raise self.interrupted  # a checksum covers the whole chunk: part of it is discarded
        assert self.hasher is not None
        if self.hasher.digest() != self.checksum.digest:
            raise ChecksumMismatch(
                f"Upload-Checksum: the chunk's {self.checksum.algorithm} does not match; it was discarded",
                field="Upload-Checksum",
            )


@dataclass(frozen=True)
class ResumableLimits:
    lifetime_seconds: int
    max_upload_bytes: int
    max_pending_per_org: int
    max_pending_per_device: int
    max_chunk_bytes: int | None


class ResumableUploads:
    def __init__(
        self,
        store: ResumableStore,
        spool: UploadSpool,
        uploads: UploadService,
        quotas: Quotas,
        signer: UrlSigner,
        limits: ResumableLimits,
    ) -> None:
        self.store = store
        self.spool = spool
        self.uploads = uploads
        self.quotas = quotas
        self.signer = signer
        self.limits = limits
        self._digests: OrderedDict[str, BlobDigests] = OrderedDict()

    # -- who may -------------------------------------------------------------------------------

    def signed_access(
        self, upload_id: str, org: str | None, expires: str | None, sig: str | None
    ) -> SignedAccess:
        return SignedAccess(self.signer.verify(UrlSigner.RESUMABLE, org, upload_id, expires, sig), upload_id)

    async def reservation(
        self, content_id: str, org: str | None, expires: str | None, sig: str | None
    ) -> Reservation:
        return await self.uploads.open_reservation(content_id, org, expires, sig)

    async def _authorize(self, record: ResumableRecord, caller: Caller) -> None:
        """The caller may continue this upload: the device that began it, a write token of its
        organization, or the holder of its signed URL (while the token behind it lasts)."""
        if isinstance(caller, SignedAccess):
            if caller.upload_id != record.id or caller.org_id != record.org_id:
                raise Forbidden("this signed URL is for another upload")
            await self.uploads.check_minting_token(record.org_id, record.spec.get("token"))
            return
        if caller.org_id != record.org_id:
            raise NotFound(f"upload '{record.id}' not found")
        if record.owner == "device":
            if caller.device is None or str(caller.device) != record.device:
                raise Forbidden("only the device that began this upload may continue it")
            return
        if record.owner == "signed":
            raise Forbidden("this upload continues at its signed URL only")
        if caller.device is not None:
            raise Forbidden("a device continues only its own uploads")
        require(caller, Permission.WRITE)

    async def _find(self, upload_id: str) -> ResumableRecord | None:
        """The upload's row; None for an unknown id, or a string that is no upload id at all."""
        return await self.store.get(upload_id) if UPLOAD_ID.fullmatch(upload_id) else None

    async def _record(self, upload_id: str, caller: Caller) -> ResumableRecord:
        record = await self._find(upload_id)
        if record is None:
            raise NotFound(f"upload '{upload_id}' not found (unknown, terminated or completed long ago)")
        await self._authorize(record, caller)
        if record.expires_at < now_ms():
            raise Gone(f"upload '{upload_id}' expired; create a new one")
        return record

    # -- creation ------------------------------------------------------------------------------

    async def device_of(self, upload_id: str) -> str | None:
        """The device an upload belongs to, so that a face can check that device's credential."""
        record = await self._find(upload_id)
        return record.device if record is not None else None

    async def create(
        self,
        caller: Principal | Reservation,
        creation: Creation,
        *,
        chunks: AsyncIterable[bytes] | None = None,
        checksum: Checksum | None = None,
        whole: bool = False,
    ) -> Upload:
        """A new upload, with its first bytes when ``chunks`` are given (creation-with-upload); a
        final upload of a concatenation is concatenated at once.

        ``whole``: the face knows the body is the whole upload (its Content-Length is the
        Upload-Length). Such an upload takes the path of any single-request upload, straight into
        the blob store, with no spool and no catalog row: if it is cut off, its client never
        learned a URL to resume at anyway. Small files from a fleet come this way.
        """
        upload_id = uuid.uuid4().hex
        now = now_ms()
        expires_at = now + self.limits.lifetime_seconds * 1000
        if isinstance(caller, Reservation):
            spec, creator, owner, device = replace(caller.spec, via="tus"), caller.creator, "signed", None
            if creation.length != caller.length:
                raise BadInput(
                    f"Upload-Length: the reservation is for {caller.length} bytes", field="Upload-Length"
                )
            if creation.concat is not None:
                raise BadInput("Upload-Concat: not for a reserved upload", field="Upload-Concat")
            extra = {"reservation": caller.content_id, "sha256": caller.sha256, "md5": caller.md5,
                     "token": caller.token}  # fmt: skip
        else:
            require(caller, Permission.WRITE)
            spec, device = self._spec(caller, creation)
            await self.uploads.check_targets(
                caller.org_id, [a for a in spec.associations if a.type == "asset"]
            )
            creator = Creator(caller.kind, None if caller.device else caller.name, device=caller.device)
            owner = "device" if caller.device else "token"
            extra = {"sha256": _declared_sha256(creation.metadata)}
        length = creation.length
        if creation.concat == "final":
            length = await self._final_length(caller, creation.parts)
        self._check_upload_limit(length)
        if creation.concat != "partial":
            assert spec.content_type is not None
            await self.quotas.admit(caller.org_id, spec.content_type, length)  # refused before any byte
        if whole and chunks is not None and creation.concat is None and length:
            content = await self._store_whole(caller.org_id, spec, creator, extra, length, chunks, checksum)
            signed = None
            if owner == "signed":
                signed = self.signer.sign_until(
                    UrlSigner.RESUMABLE, caller.org_id, upload_id, expires_at // 1000
                )
            return Upload(upload_id, caller.org_id, length, length, expires_at, creation.raw_metadata,
                          concat=None, parts=(), content_id=content.id, signed=signed)  # fmt: skip
        record = ResumableRecord(
            id=upload_id,
            org_id=caller.org_id,
            owner=owner,
            device=str(device) if device else None,
            spec={
                **spec_record(spec, creator),
                **extra,
                "metadata": creation.raw_metadata,
                "parts": list(creation.parts),
            },
            length=length,
            received=0,
            concat=creation.concat,
            spool_state=self.spool.initial_state(),
            created_at=now,
            expires_at=expires_at,
            content_id=None,
        )
        try:
            await self.store.create(
                record,
                max_per_org=self.limits.max_pending_per_org,
                max_per_device=self.limits.max_pending_per_device,
            )
        except TooManyResumable as exc:
            raise RateLimited(
                f"uploads: this {exc.scope} holds its maximum of unfinished resumable uploads; "
                "finish or terminate one, or wait for one to expire",
                retry_after=exc.retry_after,
            ) from None
        if creation.concat == "final":
            record = await self._concatenate(record, caller)
        elif length == 0 and creation.concat is None:
            record = await self._complete(record)
        elif chunks is not None:
            record = await self._append(record, 0, chunks, None, checksum)
        if record.content_id is not None and creation.concat is None:
            # Complete within its creation request: no client can ask about it later (one that
            # lost this answer never learned its URL), so the row goes now instead of holding
            # a place in the catalog until it expires; small files from a fleet make many.
            await self.store.remove([record.id])
        return self._view(record)

    def _check_upload_limit(self, length: int | None) -> None:
        if length is not None and length > self.limits.max_upload_bytes:
            raise PayloadTooLarge(
                f"Upload-Length: {length} bytes exceeds the upload limit of {self.limits.max_upload_bytes}",
                field="Upload-Length",
            )

    async def _store_whole(
        self,
        org_id: str,
        spec: ContentSpec,
        creator: Creator,
        extra: dict[str, Any],
        length: int,
        chunks: AsyncIterable[bytes],
        checksum: Checksum | None,
    ) -> Content:
        """An upload whose creation request carries all of it: one content, as a single PUT makes."""
        body = _Body(chunks, None, checksum, _nothing_to_renew)

        async def checked() -> AsyncIterator[bytes]:
            async for chunk in body:
                yield chunk
            if body.interrupted is not None:
                raise body.interrupted
            body.accept()  # the checksum, before the blob store commits the bytes

        if self.limits.max_chunk_bytes is not None and length > self.limits.max_chunk_bytes:
            raise PayloadTooLarge(
                f"body: more than the {self.limits.max_chunk_bytes} bytes one request may carry"
            )
        reservation = extra.get("reservation")
        return await self.uploads.store(
            org_id, spec, creator, checked(), expected_length=length, expected_sha256=extra.get("sha256"),
            expected_md5=extra.get("md5"), content_id=reservation, upload_id=reservation,
        )  # fmt: skip

    def _spec(self, principal: Principal, creation: Creation) -> tuple[ContentSpec, DeviceRef | None]:
        metadata = creation.metadata
        name = metadata.get("filename") or metadata.get("name")
        if creation.concat == "partial":
            name = name or "partial"
        if not name:
            raise BadInput(
                "Upload-Metadata: 'filename' is required (the content's name)",
                field="Upload-Metadata.filename",
            )
        tags = _tags(metadata.get("tags"))
        if principal.device is not None:
            associations: tuple[Association, ...] = (Association("device", str(principal.device)),)
        else:
            asset = metadata.get("asset")
            if not asset and creation.concat != "partial":
                raise BadInput(
                    "Upload-Metadata: 'asset' is required (the asset the file belongs to)",
                    field="Upload-Metadata.asset",
                )
            associations = (Association("asset", asset),) if asset else ()
        content_type = metadata.get("filetype") or metadata.get("contentType") or None
        enos = _enos_facet(metadata.get("enosCategory"), name)
        try:
            spec = check_spec(
                ContentSpec(name=name, associations=associations, content_type=content_type, tags=tags,
                            enos=enos, via="tus")
            )  # fmt: skip
        except BadInput as exc:  # the domain's field names, as tus metadata keys
            key = _METADATA_KEYS.get((exc.field or "").split("[")[0], exc.field)
            raise BadInput(
                f"Upload-Metadata.{key}: {exc.message.partition(': ')[2] or exc.message}",
                field=f"Upload-Metadata.{key}",
            ) from None
        return spec, principal.device

    async def _final_length(self, caller: Principal | Reservation, parts: tuple[str, ...]) -> int:
        if not parts or len(parts) > MAX_PARTS:
            raise BadInput(f"Upload-Concat: a final upload names 1 to {MAX_PARTS} partial uploads",
                           field="Upload-Concat")  # fmt: skip
        total = 0
        for index, part in enumerate(parts):
            record = await self._record(part, caller) if isinstance(caller, Principal) else None
            if record is None or record.concat != "partial":
                raise BadInput(f"Upload-Concat: upload {index + 1} is not a partial upload of yours",
                               field="Upload-Concat")  # fmt: skip
            if record.length is None or record.received != record.length:
                raise BadInput(f"Upload-Concat: partial upload {part} is not complete", field="Upload-Concat")
            total += record.length
        return total

    # -- appending -----------------------------------------------------------------------------

    async def status(self, upload_id: str, caller: Caller) -> Upload:
        """HEAD: the acknowledged offset, once no append is in progress.

        A client whose connection dropped mid-PATCH asks at once, while the server may still be
        storing what arrived: waiting for that append to end (up to ``HEAD_WAIT_SECONDS``, then
        Locked, which clients retry) gives the offset that includes those bytes, so nothing is
        sent twice. An upload whose bytes are all there but whose content was not made (a crash
        between the two) is finished now, so that what HEAD says is true.
        """
        record = await self._record(upload_id, caller)
        holder = uuid.uuid4().hex
        deadline = time.monotonic() + HEAD_WAIT_SECONDS
        while not await self._lease(record.id, holder):
            if time.monotonic() > deadline:
                raise _busy(upload_id)
            await anyio.sleep(0.05)
        try:
            record = await self._record(upload_id, caller)
            if self._finishable(record):
                record = await self._complete(record)
        finally:
            await self.store.release(record.id, holder)
        return self._view(record)

    def _finishable(self, record: ResumableRecord) -> bool:
        return (
            record.content_id is None
            and record.concat is None
            and record.length is not None
            and record.received == record.length
        )

    async def append(
        self,
        upload_id: str,
        caller: Caller,
        *,
        offset: int,
        chunks: AsyncIterable[bytes],
        length: int | None = None,
        checksum: Checksum | None = None,
    ) -> Upload:
        """PATCH: bytes at ``offset``, which must be the acknowledged offset."""
        record = await self._record(upload_id, caller)
        return self._view(await self._append(record, offset, chunks, length, checksum))

    async def _append(
        self,
        record: ResumableRecord,
        offset: int,
        chunks: AsyncIterable[bytes],
        length: int | None,
        checksum: Checksum | None,
    ) -> ResumableRecord:
        if record.concat == "final":
            raise Forbidden("a final upload of a concatenation takes no bytes of its own")
        if record.length is not None and length is not None and length != record.length:
            raise BadInput(f"Upload-Length: the upload's length is {record.length}", field="Upload-Length")
        if length is not None and length < record.received:
            raise BadInput(f"Upload-Length: {length} is under the upload's offset", field="Upload-Length")
        self._check_upload_limit(length)
        if offset != record.received:
            raise Conflict(
                f"Upload-Offset: {offset} is not the upload's offset {record.received}", field="Upload-Offset"
            )
        holder = uuid.uuid4().hex
        if not await self._lease(record.id, holder):
            raise _busy(record.id)
        body = None
        try:
            current = await self.store.get(record.id)  # as it is now that it is ours
            if current is None or current.content_id is not None or current.received != offset:
                now = current.received if current is not None else "gone"
                raise Conflict(
                    f"Upload-Offset: {offset} is not the upload's offset {now}", field="Upload-Offset"
                )
            record = current
            total = record.length if record.length is not None else length
            limit = await self._room(record, total)
            digests = self._running_digests(record)
            body = _Body(chunks, digests, checksum, lambda: self._renew(record.id, holder))
            appended = await self.spool.append(
                record.id, record.spool_state, offset, body, limit=limit, accept=body.accept
            )
            if not await self.store.advance(
                record.id, holder, received=appended.offset, length=total,
                spool_state=appended.state, expires_at=record.expires_at,
            ):  # fmt: skip
                raise _taken_over(record.id)
            await self.spool.retire(record.id, record.spool_state, appended.state)
            self._remember_digests(record.id, appended.offset, digests)
            record = replace(record, received=appended.offset, length=total, spool_state=appended.state)
            if record.concat == "partial" and total is not None and record.received == total:
                state = await self.spool.assemble(record.id, record.spool_state, total)
                await self.store.advance(record.id, holder, received=total, length=total,
                                         spool_state=state, expires_at=record.expires_at)  # fmt: skip
                record = replace(record, spool_state=state)
            elif self._finishable(record):
                record = await self._complete(record)
        finally:
            await self.store.release(record.id, holder)
        if body.interrupted is not None:
            raise body.interrupted  # what arrived is kept; nobody reads this answer
        return record

    async def _lease(self, upload_id: str, holder: str) -> bool:
        """Take (or renew) the upload for ``LEASE_SECONDS``; False while another request holds it."""
        return await self.store.lease(upload_id, holder, now_ms() + LEASE_SECONDS * 1000)

    async def _renew(self, upload_id: str, holder: str) -> None:
        if not await self._lease(upload_id, holder):
            raise _taken_over(upload_id)

    async def _room(self, record: ResumableRecord, total: int | None) -> int:
        """How many bytes this append may take: the rest of the upload, the quota, the chunk bound."""
        limit = (total if total is not None else self.limits.max_upload_bytes) - record.received
        if record.concat is None:
            admission: Admission = await self.quotas.admit(record.org_id, record.spec["content_type"], total)
            if admission.stream_limit is not None:
                limit = min(limit, max(0, admission.stream_limit - record.received))
        if self.limits.max_chunk_bytes is not None:
            limit = min(limit, self.limits.max_chunk_bytes)
        return max(0, limit)

    def _running_digests(self, record: ResumableRecord) -> BlobDigests | None:
        """The digests of the bytes so far, if this process saw them all; else None (hashed again at
        the end)."""
        known = self._digests.pop(record.id, None)
        if record.received == 0:
            return BlobDigests()
        if known is None or known.length != record.received:
            return None
        return known

    def _remember_digests(self, upload_id: str, offset: int, digests: BlobDigests | None) -> None:
        """Keep the digests for the next append here, if they cover exactly the bytes up to ``offset``."""
        if digests is None or digests.length != offset:
            return
        self._digests[upload_id] = digests
        while len(self._digests) > HASHES_KEPT:
            self._digests.popitem(last=False)

    # -- completion ----------------------------------------------------------------------------

    async def _complete(self, record: ResumableRecord) -> ResumableRecord:
        """Verify the bytes, store them as a blob, insert the content; a content that cannot be
        (declared sha256 differs, the quota filled up meanwhile) ends the upload with the error."""
        assert record.length is not None
        spec, creator = from_spec_record(record.spec)
        known = self._digests.pop(record.id, None)
        digests = known.result() if known is not None and known.length == record.length else None
        checks = WriteChecks(record.length, record.length, record.spec.get("sha256"), record.spec.get("md5"))
        try:
            assert spec.content_type is not None
            admission = await self.quotas.admit(record.org_id, spec.content_type, record.length)
            if record.length == 0:
                blob = await self.uploads.blobs.write(_nothing(), max_length=0, expected_length=0)
            else:
                blob = await self.spool.finish(
                    record.id, record.spool_state, record.length, digests=digests, checks=checks
                )
            content_id = record.spec.get("reservation") or str(uuid.uuid4())
            written = self.uploads.written(
                record.org_id, spec, creator, blob, admission, content_id=content_id
            )
            await self.uploads.commit(record.org_id, [written], persist=self._persist(record))
        except (IntegrityMismatch, QuotaExceeded, NotFound):
            # bytes that can never become this content (another sha256 than declared, no room in
            # the quota, a reservation used by another upload): the upload ends with the error
            await self._end(record)
            raise
        await self.spool.discard(record.id, record.spool_state)
        return replace(record, content_id=content_id, received=record.length)

    def _persist(self, record: ResumableRecord) -> Callable[[Content, int | None], Awaitable[bool]]:
        """How the upload's content is inserted: in the transaction that marks the upload complete
        (and retires its reservation, if it has one)."""

        async def persist(content: Content, max_total_bytes: int | None) -> bool:
            reservation = record.spec.get("reservation")
            return await self.store.complete(
                record.id, content, reservation=reservation, max_total_bytes=max_total_bytes
            )

        return persist

    async def _concatenate(self, record: ResumableRecord, caller: Principal | Reservation) -> ResumableRecord:
        """A final upload: its partial uploads' bytes, in order, become its content at once."""
        parts = [await self.store.get(part) for part in record.spec["parts"]]

        async def joined() -> AsyncIterator[bytes]:
            for part in parts:
                assert part is not None
                async for chunk in self.spool.read(part.id, part.spool_state):
                    yield chunk

        spec, creator = from_spec_record(record.spec)
        try:
            written = await self.uploads.write(
                record.org_id, spec, creator, joined(), expected_length=record.length,
                expected_sha256=record.spec.get("sha256"),
            )  # fmt: skip
            (content,) = await self.uploads.commit(record.org_id, [written], persist=self._persist(record))
        except AssetfilesError:
            await self.store.remove([record.id])
            raise
        for part in parts:
            if part is not None:
                await self._end(part)
        return replace(record, content_id=content.id, received=content.length)

    # -- ending --------------------------------------------------------------------------------

    async def terminate(self, upload_id: str, caller: Caller) -> None:
        """DELETE: the upload and its bytes are gone (a completed content stays)."""
        record = await self._record(upload_id, caller)
        if not await self._lease(record.id, uuid.uuid4().hex):
            raise _busy(upload_id)
        await self._end(record)

    async def _end(self, record: ResumableRecord) -> None:
        self._digests.pop(record.id, None)
        await self.store.remove([record.id])
        if record.content_id is None:
            await self.spool.discard(record.id, record.spool_state)

    async def collect_expired(self, *, dry_run: bool = False) -> int:
        """gc: remove uploads whose time is up, with the bytes they hold. Returns how many."""
        removed = 0
        while batch := await self.store.expired(now_ms()):
            if dry_run:
                return len(batch)
            for record in batch:
                try:
                    await self.spool.discard(record.id, record.spool_state)
                except Exception:  # one unreachable spool entry does not stop the rest
                    logger.exception("could not remove the bytes of expired upload %s", record.id)
            await self.store.remove([record.id for record in batch])
            removed += len(batch)
        return removed

    # -- views ---------------------------------------------------------------------------------

    def _view(self, record: ResumableRecord) -> Upload:
        signed = None
        if record.owner == "signed":
            signed = self.signer.sign_until(
                UrlSigner.RESUMABLE, record.org_id, record.id, record.expires_at // 1000
            )
        return Upload(
            id=record.id,
            org_id=record.org_id,
            length=record.length,
            offset=record.received,
            expires_at=record.expires_at,
            raw_metadata=record.spec.get("metadata"),
            concat=record.concat,
            parts=tuple(record.spec.get("parts", ())),
            content_id=record.content_id,
            signed=signed,
        )


def _busy(upload_id: str) -> Locked:
    return Locked(f"upload '{upload_id}' is receiving bytes in another request; retry after it")


def _taken_over(upload_id: str) -> Locked:
    return Locked(f"upload '{upload_id}' was taken over while this request was slow")


async def _nothing_to_renew() -> None:
    """A single-request upload holds no lease."""


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield b""


def _declared_sha256(metadata: dict[str, str | None]) -> str | None:
    value = metadata.get("sha256")
    if value is None:
        return None
    if not SHA256_HEX.fullmatch(value.lower()):
        raise BadInput(
            "Upload-Metadata: 'sha256' must be 64 hexadecimal characters", field="Upload-Metadata.sha256"
        )
    return value.lower()


def _enos_facet(category: str | None, name: str) -> EnosFacet | None:
    """With ``enosCategory`` (feature or ota), the content gets an EnOS file URI, as an EnOS
    upload would: the EnOS file API finds it then."""
    if category is None:
        return None
    if category not in ("feature", "ota"):
        raise BadInput(
            "Upload-Metadata.enosCategory: 'feature' or 'ota'", field="Upload-Metadata.enosCategory"
        )
    return EnosFacet(mint_enos_uri(name), category)


def _tags(value: str | None) -> dict[str, str]:
    if value is None:
        return {}
    try:
        tags = json.loads(value)
    except ValueError:
        tags = None
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        raise BadInput(
            "Upload-Metadata: 'tags' must be a JSON object of strings", field="Upload-Metadata.tags"
        )
    check_tags(tags, field="Upload-Metadata.tags")
    return tags
