"""The tus 1.0.0 face: resumable uploads at ``/files/`` (tusd's default path).

Core (HEAD, PATCH, OPTIONS) and the extensions creation, creation-with-upload,
creation-defer-length, expiration, checksum, termination and concatenation, with the status
codes of the protocol (409 offset mismatch, 412 version, 413 too large, 415 content type,
423 locked, 460 checksum mismatch, 404/410 unknown or expired). Errors answer in plain text,
which is what tus clients show. ``X-HTTP-Method-Override`` and CORS serve browsers.

Credentials, on every request: ``Authorization: Automation <token>`` (write permission),
``Authorization: Device <secret>`` (the device named by the ``device`` metadata key at creation),
``Authorization: Session <sessionId>`` (an EnOS device session, likewise), or a signed URL:
creating at a ``createContentUpload`` upload URL (POST instead of PUT) answers with a signed
``/files/`` URL that needs no other credential. The rules are in ``service/resumable.py``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator
from email.utils import formatdate
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from assetfiles.errors import (
    AssetfilesError,
    BadInput,
    ChecksumMismatch,
    Unauthenticated,
    UnsupportedMediaType,
)
from assetfiles.model import DeviceRef, Principal
from assetfiles.server.auth import public_base_url, signed_parameters
from assetfiles.server.bodies import body_chunks, check_declared_length
from assetfiles.server.faces import INTERNAL_MESSAGE, Face, http_status, remember_principal, signing_in
from assetfiles.server.metrics import upload_in_flight
from assetfiles.service.composition import Services
from assetfiles.service.resumable import (
    CHECKSUMS,
    EXTENSIONS,
    MAX_METADATA_BYTES,
    TUS_VERSION,
    Caller,
    Checksum,
    Creation,
    Upload,
)
from assetfiles.service.uploads import Reservation

OFFSET_STREAM = "application/offset+octet-stream"
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": ", ".join((
        "Location", "Tus-Resumable", "Tus-Version", "Tus-Max-Size", "Tus-Extension", "Tus-Checksum-Algorithm",
        "Upload-Offset", "Upload-Length", "Upload-Defer-Length", "Upload-Metadata", "Upload-Concat",
        "Upload-Expires", "Upload-Content-Id",
    )),
}  # fmt: skip
PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Methods": "POST, HEAD, PATCH, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": ", ".join((
        "Authorization", "Content-Type", "Tus-Resumable", "Upload-Length", "Upload-Defer-Length",
        "Upload-Metadata", "Upload-Offset", "Upload-Concat", "Upload-Checksum", "X-HTTP-Method-Override",
        "X-Requested-With",
    )),
    "Access-Control-Max-Age": "86400",
}  # fmt: skip


def _headers(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"Tus-Resumable": TUS_VERSION, "Cache-Control": "no-store", **CORS_HEADERS, **(extra or {})}


def tus_error(request: Request, error: AssetfilesError, request_id: str) -> Response:
    status = 460 if isinstance(error, ChecksumMismatch) else http_status(error)
    headers = _headers()
    if error.code == "TUS_VERSION":
        status = 412
        headers["Tus-Version"] = TUS_VERSION
    return PlainTextResponse(f"{error.message} (request {request_id})\n", status_code=status, headers=headers)


def tus_unexpected(request_id: str) -> Response:
    return PlainTextResponse(f"{INTERNAL_MESSAGE}: {request_id}\n", status_code=500, headers=_headers())


TUS = Face("tus", tus_error, tus_unexpected)


class VersionUnsupported(BadInput):
    code = "TUS_VERSION"


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _check_version(request: Request) -> None:
    version = request.headers.get("tus-resumable")
    if version != TUS_VERSION:
        raise VersionUnsupported(
            f"Tus-Resumable: {version!r} is not a version this server speaks ({TUS_VERSION})",
            field="Tus-Resumable",
        )


def _non_negative(request: Request, name: str) -> int | None:
    value = request.headers.get(name)
    if value is None:
        return None
    if not value.isdigit() or len(value) > 19:
        raise BadInput(f"{name}: must be a non-negative integer", field=name)
    return int(value)


async def _principal(request: Request, device: str | None) -> Principal:
    """The token, device or device session the Authorization header presents."""
    services = _services(request)
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.strip().partition(" ")
    scheme, secret = scheme.lower(), secret.strip()
    if not header or not secret:
        raise Unauthenticated(
            "the Authorization header is missing (Automation <token>, Device <secret> or Session <sessionId>)"
        )
    async with signing_in(request, header):
        if scheme in ("automation", "bearer"):
            principal = await services.access.token_principal(secret)
        elif scheme in ("device", "session"):
            if device is None:
                raise Unauthenticated(
                    "a device credential needs the device: the 'device' metadata key (<productId>.<deviceId>)"
                )
            ref = DeviceRef.parse(device, field="Upload-Metadata.device")
            if scheme == "device":
                principal = await services.access.device_principal(ref, secret)
            else:
                principal = await services.device_sessions.principal(ref, secret)
        else:
            raise Unauthenticated("the Authorization header must be Automation, Device or Session")
    await remember_principal(request, principal)
    return principal


async def _caller(request: Request, upload_id: str) -> Caller:
    org, expires, sig = signed_parameters(request)
    if sig is not None:
        access = _services(request).resumable.signed_access(upload_id, org, expires, sig)
        request.state.org = access.org_id
        return access
    return await _principal(request, await _services(request).resumable.device_of(upload_id))


def _location(request: Request, upload: Upload) -> str:
    base = public_base_url(request, _services(request).settings)
    if upload.signed is not None:
        return base + upload.signed.path
    return f"{base}/files/{upload.id}"


def _upload_headers(request: Request, upload: Upload) -> dict[str, str]:
    headers = {"Upload-Expires": formatdate(upload.expires_at / 1000, usegmt=True)}
    if upload.length is not None:
        headers["Upload-Length"] = str(upload.length)
    else:
        headers["Upload-Defer-Length"] = "1"
    if upload.concat != "final" or upload.content_id is not None:
        headers["Upload-Offset"] = str(upload.offset)
    if upload.raw_metadata:
        headers["Upload-Metadata"] = upload.raw_metadata
    if upload.concat == "partial":
        headers["Upload-Concat"] = "partial"
    elif upload.concat == "final":
        base = public_base_url(request, _services(request).settings)
        headers["Upload-Concat"] = "final;" + " ".join(f"{base}/files/{part}" for part in upload.parts)
    if upload.content_id is not None:
        headers["Upload-Content-Id"] = upload.content_id
    return headers


def _creation(request: Request) -> Creation:
    length = _non_negative(request, "Upload-Length")
    deferred = request.headers.get("upload-defer-length")
    if deferred is not None and deferred != "1":
        raise BadInput("Upload-Defer-Length: the only value is 1", field="Upload-Defer-Length")
    concat_header = request.headers.get("upload-concat")
    concat: str | None = None
    parts: tuple[str, ...] = ()
    if concat_header is not None:
        concat, parts = _parse_concat(concat_header)
    if concat != "final":
        if length is None and deferred is None:
            raise BadInput("Upload-Length: required (or Upload-Defer-Length: 1)", field="Upload-Length")
        if length is not None and deferred is not None:
            raise BadInput("Upload-Defer-Length: not with Upload-Length", field="Upload-Defer-Length")
    elif length is not None or deferred is not None:
        raise BadInput("Upload-Length: a final upload's length is its parts'", field="Upload-Length")
    raw = request.headers.get("upload-metadata")
    return Creation(length, parse_metadata(raw), raw, concat, parts)


def _parse_concat(header: str) -> tuple[str, tuple[str, ...]]:
    if header == "partial":
        return "partial", ()
    kind, _, urls = header.partition(";")
    if kind != "final" or not urls.strip():
        raise BadInput("Upload-Concat: 'partial' or 'final;<url> <url> ...'", field="Upload-Concat")
    parts = []
    for url in urls.split():
        path = urlsplit(url).path.rstrip("/")
        prefix, _, upload_id = path.rpartition("/")
        if not prefix.endswith("/files") or not upload_id:
            raise BadInput(f"Upload-Concat: {url!r} is not an upload of this server", field="Upload-Concat")
        parts.append(upload_id)
    return "final", tuple(parts)


def _carries_all(request: Request, creation: Creation) -> bool:
    """Whether a creation's body is the whole upload: its Content-Length is the Upload-Length."""
    declared = request.headers.get("content-length", "")
    return creation.length is not None and declared.isdigit() and int(declared) == creation.length


def _is_offset_stream(request: Request) -> bool:
    return request.headers.get("content-type", "").split(";")[0].strip() == OFFSET_STREAM


def _first_bytes(request: Request) -> AsyncIterator[bytes] | None:
    """The body of a creation, when it carries bytes (creation-with-upload)."""
    if request.headers.get("content-length", "0") == "0" and "transfer-encoding" not in request.headers:
        return None
    if not _is_offset_stream(request):
        raise UnsupportedMediaType(
            f"Content-Type: bytes sent at creation must be {OFFSET_STREAM}", field="Content-Type"
        )
    return body_chunks(request)


def _checksum(request: Request) -> Checksum | None:
    header = request.headers.get("upload-checksum")
    return parse_checksum(header) if header is not None else None


def parse_checksum(header: str) -> Checksum:
    """``Upload-Checksum: <algorithm> <base64 digest>``."""
    algorithm, _, encoded = header.strip().partition(" ")
    if algorithm not in CHECKSUMS:
        raise BadInput(
            f"Upload-Checksum: unsupported algorithm {algorithm!r} (supported: {', '.join(CHECKSUMS)})",
            field="Upload-Checksum",
        )
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except binascii.Error:
        raise BadInput("Upload-Checksum: the digest is not base64", field="Upload-Checksum") from None
    if len(digest) != CHECKSUMS[algorithm]().digest_size:
        raise BadInput(f"Upload-Checksum: not a {algorithm} digest", field="Upload-Checksum")
    return Checksum(algorithm, digest)


def parse_metadata(header: str | None) -> dict[str, str | None]:
    """``Upload-Metadata``: comma-separated ``key base64(value)`` pairs (the value may be absent)."""
    if header is None or not header.strip():
        return {}
    if len(header) > MAX_METADATA_BYTES:
        raise BadInput(f"Upload-Metadata: longer than {MAX_METADATA_BYTES} bytes", field="Upload-Metadata")
    metadata: dict[str, str | None] = {}
    for pair in header.split(","):
        key, _, encoded = pair.strip().partition(" ")
        if not key or not key.isascii() or not key.isprintable() or key in metadata:
            raise BadInput(
                f"Upload-Metadata: {key!r} is empty, not ASCII, or given twice", field="Upload-Metadata"
            )
        try:
            metadata[key] = base64.b64decode(encoded.strip(), validate=True).decode() if encoded else None
        except (binascii.Error, UnicodeDecodeError):
            raise BadInput(
                f"Upload-Metadata: the value of {key!r} is not base64 of UTF-8 text",
                field=f"Upload-Metadata.{key}",
            ) from None
    return metadata


# -- endpoints ------------------------------------------------------------------------------------


def _options(request: Request) -> Response:
    """Discovery (and the browsers' CORS preflight), the same at every tus path."""
    settings_headers = {
        "Tus-Version": TUS_VERSION,
        "Tus-Extension": ",".join(EXTENSIONS),
        "Tus-Checksum-Algorithm": ",".join(CHECKSUMS),
        "Tus-Max-Size": str(_services(request).settings.max_upload_bytes),
    }
    return Response(status_code=204, headers=_headers({**settings_headers, **PREFLIGHT_HEADERS}))


async def _create(request: Request, caller: Principal | Reservation, creation: Creation) -> Response:
    """A creation, with the bytes its body carries (creation-with-upload), answered 201."""
    services = _services(request)
    check_declared_length(request, services.settings.max_upload_bytes)
    with upload_in_flight():
        upload = await services.resumable.create(
            caller, creation, chunks=_first_bytes(request), checksum=_checksum(request),
            whole=_carries_all(request, creation),
        )  # fmt: skip
    headers = _upload_headers(request, upload)
    headers["Location"] = _location(request, upload)
    return Response(status_code=201, headers=_headers(headers))


@TUS
async def collection(request: Request) -> Response:
    """``/files/``: OPTIONS (discovery) and POST (creation)."""
    if request.method == "OPTIONS":
        return _options(request)
    _check_version(request)
    request.state.operation = "tus.create"
    creation = _creation(request)
    return await _create(request, await _principal(request, creation.metadata.get("device")), creation)


@TUS
async def reserved(request: Request) -> Response:
    """``/transfer/uploads/{content_id}`` with POST: a resumable upload of a reservation."""
    if request.method == "OPTIONS":
        return _options(request)
    _check_version(request)
    request.state.operation = "tus.create"
    reservation = await _services(request).resumable.reservation(
        request.path_params["content_id"], *signed_parameters(request)
    )
    request.state.org = reservation.org_id
    return await _create(request, reservation, _creation(request))


@TUS
async def resource(request: Request) -> Response:
    """``/files/{upload_id}``: HEAD, PATCH, DELETE (also as POST with X-HTTP-Method-Override)."""
    method = request.method
    if method == "POST" and "x-http-method-override" in request.headers:
        method = request.headers["x-http-method-override"].upper()
    if method == "OPTIONS":
        return _options(request)
    _check_version(request)
    services = _services(request)
    upload_id = request.path_params["upload_id"]
    if method not in ("HEAD", "PATCH", "DELETE"):
        raise BadInput(f"{method} is not a method of an upload (HEAD, PATCH, DELETE)", field="method")
    caller = await _caller(request, upload_id)
    if method == "HEAD":
        request.state.operation = "tus.head"
        upload = await services.resumable.status(upload_id, caller)
        return Response(status_code=200, headers=_headers(_upload_headers(request, upload)))
    if method == "DELETE":
        request.state.operation = "tus.terminate"
        await services.resumable.terminate(upload_id, caller)
        return Response(status_code=204, headers=_headers())
    request.state.operation = "tus.patch"
    if not _is_offset_stream(request):
        raise UnsupportedMediaType(f"Content-Type: a PATCH carries {OFFSET_STREAM}", field="Content-Type")
    offset = _non_negative(request, "Upload-Offset")
    if offset is None:
        raise BadInput("Upload-Offset: required", field="Upload-Offset")
    check_declared_length(request, services.settings.max_upload_bytes)
    with upload_in_flight():
        upload = await services.resumable.append(
            upload_id,
            caller,
            offset=offset,
            chunks=body_chunks(request),
            length=_non_negative(request, "Upload-Length"),
            checksum=_checksum(request),
        )
    return Response(status_code=204, headers=_headers(_upload_headers(request, upload)))
