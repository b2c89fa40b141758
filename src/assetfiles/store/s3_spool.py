"""The upload spool in S3-compatible storage: every server process reaches it.

An upload's bytes become the parts of one S3 multipart upload at ``<prefix>/resumable/<id>/
assembled``. S3 wants every part but the last to be at least 5 MiB, and a tus PATCH may carry a
few bytes, so bytes that do not fill a part yet wait in a *tail* object (``tail-<n>``, a new
name for each append so that the acknowledged tail is never overwritten before the catalog has
moved on). The next append reads the tail back and continues it. The catalog keeps the state:
the multipart upload id, the parts so far and the tail's generation and length.

Abandoned uploads are aborted and their objects removed by ``discard`` (termination, gc).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Any

from botocore.exceptions import ClientError

from assetfiles.errors import BytesMissing, PayloadTooLarge
from assetfiles.store.blobs import BlobDigests, StoredBlob, WriteChecks
from assetfiles.store.s3 import PART_BYTES, S3BlobStore, error_code
from assetfiles.store.spool import Appended, check_upload_id


class S3UploadSpool:
    def __init__(self, blobs: S3BlobStore) -> None:
        self.blobs = blobs

    def _key(self, upload_id: str, name: str) -> str:
        return self.blobs.location.key(f"resumable/{check_upload_id(upload_id)}/{name}")

    @property
    def _client(self) -> Any:
        return self.blobs.client

    def initial_state(self) -> dict[str, Any]:
        return {"upload": None, "parts": [], "tail": 0, "generation": 0}

    async def _tail(self, upload_id: str, state: dict[str, Any]) -> bytes:
        if not state["tail"]:
            return b""
        key = self._key(upload_id, f"tail-{state['generation']}")
        try:
            answer = await self._client.get_object(Bucket=self.blobs.bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) in ("404", "NoSuchKey"):
                raise BytesMissing(f"upload spool: the tail object {key} is missing") from None
            raise
        async with answer["Body"] as body:
            data: bytes = await body.read()
        if len(data) != state["tail"]:
            raise BytesMissing(f"upload spool: {key} holds {len(data)} bytes, {state['tail']} acknowledged")
        return data

    async def _start(self, upload_id: str) -> str:
        key = self._key(upload_id, "assembled")
        answer = await self._client.create_multipart_upload(Bucket=self.blobs.bucket, Key=key)
        return str(answer["UploadId"])

    async def _part(self, upload_id: str, multipart: str, number: int, data: bytes) -> list[Any]:
        key = self._key(upload_id, "assembled")
        part = await self.blobs.upload_part(key, multipart, number, data)
        return [number, part["ETag"], len(data)]

    async def append(
        self,
        upload_id: str,
        state: dict[str, Any],
        offset: int,
        chunks: AsyncIterable[bytes],
        *,
        limit: int,
        accept: Callable[[], None],
    ) -> Appended:
        buffer = bytearray(await self._tail(upload_id, state))
        multipart: str | None = state["upload"]
        started_here = False
        parts = list(state["parts"])
        received = 0
        try:
            async for chunk in chunks:
                received += len(chunk)
                if received > limit:
                    raise PayloadTooLarge(f"body: more than the {limit} bytes this upload has room for")
                buffer += chunk
                while len(buffer) >= PART_BYTES:
                    if multipart is None:
                        multipart, started_here = await self._start(upload_id), True
                    parts.append(
                        await self._part(upload_id, multipart, len(parts) + 1, bytes(buffer[:PART_BYTES]))
                    )
                    del buffer[:PART_BYTES]
            accept()
            generation = state["generation"] + 1
            if buffer:
                key = self._key(upload_id, f"tail-{generation}")
                await self._client.put_object(Bucket=self.blobs.bucket, Key=key, Body=bytes(buffer))
        except BaseException:
            # Parts sent here are replaced by the next append (same numbers); an upload begun here
            # is not in the catalog, so it is aborted now.
            if started_here and multipart is not None:
                await self._client.abort_multipart_upload(
                    Bucket=self.blobs.bucket, Key=self._key(upload_id, "assembled"), UploadId=multipart
                )
            raise
        new = {"upload": multipart, "parts": parts, "tail": len(buffer), "generation": generation}
        return Appended(offset + received, new)

    async def retire(self, upload_id: str, old: dict[str, Any], new: dict[str, Any]) -> None:
        if old["tail"] and old["generation"] != new.get("generation"):
            key = self._key(upload_id, f"tail-{old['generation']}")
            await self._client.delete_object(Bucket=self.blobs.bucket, Key=key)

    async def assemble(self, upload_id: str, state: dict[str, Any], length: int) -> dict[str, Any]:
        """Complete the multipart upload with the tail as its last part (S3 lets the last part be
        small). Safe to repeat: a multipart upload already completed leaves the object in place."""
        if state.get("assembled"):
            return state
        key = self._key(upload_id, "assembled")
        tail = await self._tail(upload_id, state)
        if state["upload"] is None:  # under one part: a single object
            await self._client.put_object(Bucket=self.blobs.bucket, Key=key, Body=tail)
        else:
            parts = list(state["parts"])
            if tail:
                parts.append(await self._part(upload_id, state["upload"], len(parts) + 1, tail))
            try:
                await self._client.complete_multipart_upload(
                    Bucket=self.blobs.bucket,
                    Key=key,
                    UploadId=state["upload"],
                    MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etag} for n, etag, _ in parts]},
                )
            except ClientError as exc:
                if error_code(exc) != "NoSuchUpload":
                    raise
        size = await self.blobs.object_length(key)
        if size != length:
            raise BytesMissing(f"upload spool: {key} holds {size} bytes, {length} acknowledged")
        return {**state, "assembled": True}

    async def read(self, upload_id: str, state: dict[str, Any]) -> AsyncIterator[bytes]:
        answer = await self._client.get_object(
            Bucket=self.blobs.bucket, Key=self._key(upload_id, "assembled")
        )
        async with answer["Body"] as body:
            while chunk := await body.read(PART_BYTES):
                yield chunk

    async def finish(
        self,
        upload_id: str,
        state: dict[str, Any],
        length: int,
        *,
        digests: StoredBlob | None,
        checks: WriteChecks,
    ) -> StoredBlob:
        state = await self.assemble(upload_id, state, length)
        blob = digests
        if blob is None:
            hashed = BlobDigests()
            async for chunk in self.read(upload_id, state):
                hashed.update(chunk)
            blob = hashed.result()
        checks.complete(blob)
        if not await self.blobs.exists(blob.sha256):
            await self.blobs.copy(self._key(upload_id, "assembled"), self.blobs.blob_key(blob.sha256), length)
        return blob

    async def discard(self, upload_id: str, state: dict[str, Any]) -> None:
        if state.get("upload") and not state.get("assembled"):
            try:
                await self._client.abort_multipart_upload(
                    Bucket=self.blobs.bucket, Key=self._key(upload_id, "assembled"), UploadId=state["upload"]
                )
            except ClientError as exc:
                if error_code(exc) != "NoSuchUpload":
                    raise
        prefix = self._key(upload_id, "")
        paginator = self._client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.blobs.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                await self._client.delete_object(Bucket=self.blobs.bucket, Key=item["Key"])
