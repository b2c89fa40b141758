"""Blobs in S3-compatible object storage (aiobotocore), content-addressed like the local store.

Keys: ``<prefix>/<aa>/<bb>/<sha256>``; uploads in progress under ``<prefix>/tmp/``. Bytes are
streamed to a temporary key as a multipart upload while being hashed, checked against the
declared length and digest, then copied to their sha256 key and the temporary key deleted:
readers never see half a blob, and identical files are stored once. Downloads never pass
through Python: the service hands out URLs presigned by the store (with the content's name and
type set on the response), valid exactly as long as assetfiles' own signed URLs.

Credentials, region and endpoint come from the settings or the standard AWS environment
(``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL``).
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import botocore.session
from aiobotocore.session import get_session
from botocore.config import Config
from botocore.exceptions import ClientError

from assetfiles.model import SHA256_HEX, BlobStream, Delivery, Redirect, Streamed, content_disposition
from assetfiles.store.blobs import BlobDigests, BlobInfo, StoredBlob, WriteChecks, blob_path

PART_BYTES = 8 * 1024 * 1024  # S3 wants >= 5 MiB for every part but the last
COPY_PART_BYTES = 1024**3  # server-side copies of objects over 5 GiB go in 1 GiB parts
SINGLE_COPY_MAX = 5 * 1024**3


async def _body(stream: Any) -> AsyncIterator[bytes]:
    async with stream as body:
        while chunk := await body.read(PART_BYTES):
            yield chunk


async def _empty() -> AsyncIterator[bytes]:
    return
    yield b""


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> S3Location:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(f"blob_url: {url!r} is not s3://bucket[/prefix]")
        return cls(parts.netloc, parts.path.strip("/"))

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name


class S3BlobStore:
    def __init__(self, location: S3Location, *, endpoint_url: str | None, region: str | None) -> None:
        self.location = location
        self.bucket = location.bucket
        config = Config(s3={"addressing_style": "path"}, signature_version="s3v4")
        self._options: dict[str, Any] = {
            "endpoint_url": endpoint_url,
            "region_name": region,
            "config": config,
        }
        # Presigning is pure computation: a plain botocore client does it synchronously, so
        # GraphQL's `url` field needs no await.
        self._signer = botocore.session.get_session().create_client("s3", **self._options)
        self._stack = AsyncExitStack()
        self._client: Any = None

    @property
    def client(self) -> Any:
        """The open aiobotocore client (for the upload spool, store/s3_spool.py)."""
        return self._client

    async def open(self) -> None:
        self._client = await self._stack.enter_async_context(
            get_session().create_client("s3", **self._options)
        )

    async def close(self) -> None:
        await self._stack.aclose()

    # -- keys ----------------------------------------------------------------------------------

    async def check_writable(self) -> None:
        key = self.location.key(f"tmp/ready-{uuid.uuid4().hex}")
        await self._client.put_object(Bucket=self.bucket, Key=key, Body=b"ok")
        await self._client.delete_object(Bucket=self.bucket, Key=key)

    def blob_key(self, sha256: str) -> str:
        return self.location.key(blob_path(sha256))

    # -- downloads -----------------------------------------------------------------------------

    def deliver(
        self, sha256: str, *, name: str, content_type: str, expires_at: int, inline: bool
    ) -> Delivery:
        """A presigned GET URL of the object store, or, ``inline``, the object streamed through."""
        if inline:
            return Streamed(functools.partial(self._stream, sha256))
        return Redirect(self._presign(sha256, content_type, content_disposition(name), expires_at))

    def _presign(self, sha256: str, content_type: str, disposition: str, expires_at: int) -> str:
        """A GET URL of the object store, valid until ``expires_at``, answering with our name and type."""
        params = {"Bucket": self.bucket, "Key": self.blob_key(sha256),
                  "ResponseContentDisposition": disposition, "ResponseContentType": content_type}  # fmt: skip
        expires_in = max(1, expires_at - int(time.time()))
        url: str = self._signer.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in)
        return url

    async def _stream(self, sha256: str, byte_range: str | None) -> BlobStream:
        """The object's bytes (one ``Range`` passed through), for APIs that must answer with them."""
        options = {"Range": byte_range} if byte_range else {}
        try:
            answer = await self._client.get_object(Bucket=self.bucket, Key=self.blob_key(sha256), **options)
        except ClientError as exc:
            if error_code(exc) == "InvalidRange":
                length = await self.blob_length(sha256)
                return BlobStream(416, None, f"bytes */{length}", _empty())
            raise
        return BlobStream(
            206 if answer.get("ContentRange") else 200,
            int(answer["ContentLength"]),
            answer.get("ContentRange"),
            _body(answer["Body"]),
        )

    # -- writing -------------------------------------------------------------------------------

    async def write(
        self,
        chunks: AsyncIterable[bytes],
        *,
        max_length: int,
        expected_length: int | None = None,
        expected_sha256: str | None = None,
        expected_md5: str | None = None,
    ) -> StoredBlob:
        checks = WriteChecks(max_length, expected_length, expected_sha256, expected_md5)
        temporary = self.location.key(f"tmp/{uuid.uuid4().hex}")
        upload = await self._client.create_multipart_upload(Bucket=self.bucket, Key=temporary)
        upload_id = upload["UploadId"]
        digests = BlobDigests()
        parts: list[dict[str, Any]] = []
        buffer = bytearray()
        completed = False
        try:
            async for chunk in chunks:
                checks.received(digests.length + len(chunk))
                digests.update(chunk)
                buffer += chunk
                if len(buffer) >= PART_BYTES:
                    parts.append(await self.upload_part(temporary, upload_id, len(parts) + 1, bytes(buffer)))
                    buffer.clear()
            if buffer or not parts:
                parts.append(await self.upload_part(temporary, upload_id, len(parts) + 1, bytes(buffer)))
            await self._client.complete_multipart_upload(
                Bucket=self.bucket, Key=temporary, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
            completed = True
            blob = digests.result()
            checks.complete(blob)
            if not await self.exists(blob.sha256):
                await self.copy(temporary, self.blob_key(blob.sha256), blob.length)
            return blob
        finally:
            if completed:
                await self._client.delete_object(Bucket=self.bucket, Key=temporary)
            else:
                await self._client.abort_multipart_upload(
                    Bucket=self.bucket, Key=temporary, UploadId=upload_id
                )

    async def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> dict[str, Any]:
        answer = await self._client.upload_part(
            Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
        )
        return {"PartNumber": number, "ETag": answer["ETag"]}

    async def copy(self, source: str, target: str, length: int) -> None:
        origin = {"Bucket": self.bucket, "Key": source}
        if length <= SINGLE_COPY_MAX:
            await self._client.copy_object(Bucket=self.bucket, Key=target, CopySource=origin)
            return
        upload_id = (await self._client.create_multipart_upload(Bucket=self.bucket, Key=target))["UploadId"]
        parts = []
        for number, start in enumerate(range(0, length, COPY_PART_BYTES), start=1):
            end = min(length, start + COPY_PART_BYTES) - 1
            answer = await self._client.upload_part_copy(
                Bucket=self.bucket, Key=target, UploadId=upload_id, PartNumber=number,
                CopySource=origin, CopySourceRange=f"bytes={start}-{end}",
            )  # fmt: skip
            parts.append({"PartNumber": number, "ETag": answer["CopyPartResult"]["ETag"]})
        await self._client.complete_multipart_upload(
            Bucket=self.bucket, Key=target, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )

    # -- presence and removal --------------------------------------------------------------------

    async def blob_length(self, sha256: str) -> int | None:
        return await self.object_length(self.blob_key(sha256))

    async def object_length(self, key: str) -> int | None:
        try:
            answer = await self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return int(answer["ContentLength"])

    async def exists(self, sha256: str) -> bool:
        return await self.blob_length(sha256) is not None

    async def remove_unless(self, sha256: str, still_used: Callable[[], Awaitable[bool]]) -> bool:
        """Delete unless referenced. Object storage has no atomic move-aside: an upload of the same
        bytes racing with this delete finds the blob gone after inserting its row and fails with
        a retryable conflict (see the upload service), so no row is ever left without bytes."""
        if await still_used() or not await self.exists(sha256):
            return False
        await self._client.delete_object(Bucket=self.bucket, Key=self.blob_key(sha256))
        return True

    # -- maintenance ------------------------------------------------------------------------------

    async def list_blobs(self) -> AsyncIterator[BlobInfo]:
        paginator = self._client.get_paginator("list_objects_v2")
        prefix = self.location.key("")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                name = item["Key"][len(prefix) :]
                digest = name.rsplit("/", 1)[-1]
                if not name.startswith("tmp/") and SHA256_HEX.fullmatch(digest):
                    yield BlobInfo(digest, int(item["Size"]), item["LastModified"].timestamp())

    async def read_blob(self, sha256: str) -> AsyncIterator[bytes]:
        answer = await self._client.get_object(Bucket=self.bucket, Key=self.blob_key(sha256))
        async with answer["Body"] as body:
            while chunk := await body.read(PART_BYTES):
                yield chunk

    async def remove_stale_temporaries(self, older_than: float) -> int:
        removed = 0
        paginator = self._client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=self.location.key("tmp/")):
            for item in page.get("Contents", []):
                if item["LastModified"].timestamp() < older_than:
                    await self._client.delete_object(Bucket=self.bucket, Key=item["Key"])
                    removed += 1
        return removed
