"""The EnOS face: the token service, ``/connect-service/v2.1/files`` and integration uploads.

It parses query strings, headers and bodies, calls the EnOS services, and renders EnOS's
envelopes: ``{status, msg, business, data}`` for the token service and
``{code, msg, requestId, data}`` for the Connection Service, with a non-2xx HTTP status on
failure (the envelope's ``code`` is that status, except 1203 for an expired token).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import json5
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from assetfiles.errors import AssetfilesError, BadInput, TokenExpired, TokenRefused
from assetfiles.model import BlobStream, Content, Permission, Principal, content_disposition
from assetfiles.server.auth import public_base_url
from assetfiles.server.multipart import EnosMultipart
from assetfiles.server.transfer import accel_path, file_response, request_body
from assetfiles.service.context import Services
from assetfiles.service.enos_files import check_category, check_file_uri, check_org, check_owner, required
from assetfiles.service.enos_tokens import BAD_PARAMETER

BUSINESS = "apim-token-service"
MAX_TOKEN_BODY = 16 * 1024
FILE_ACTIONS = {"download": "GET", "getFileInfo": "GET", "getDownloadUrl": "GET", "delete": "POST"}


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


# -- token service ------------------------------------------------------------------------------


def _token_answer(status: int, msg: str, data: Any, http_status: int = 200) -> JSONResponse:
    return JSONResponse(
        {"status": status, "msg": msg, "business": BUSINESS, "data": data}, status_code=http_status
    )


async def _token_body(request: Request) -> Any:
    raw = await request.body()
    if len(raw) > MAX_TOKEN_BODY:
        raise TokenRefused(
            "body: larger than 16 KiB", enos_status=BAD_PARAMETER, http_status=400, field="body"
        )
    try:
        return json.loads(raw)
    except ValueError:
        raise TokenRefused(
            "body: must be a JSON object", enos_status=BAD_PARAMETER, http_status=400, field="body"
        ) from None


async def token_get(request: Request) -> Response:
    return await _token_endpoint(request, _services(request).enos_tokens.get)


async def token_refresh(request: Request) -> Response:
    return await _token_endpoint(request, _services(request).enos_tokens.refresh)


async def _token_endpoint(
    request: Request, operation: Callable[[Any], Awaitable[tuple[str, int]]]
) -> Response:
    try:
        token, expire = await operation(await _token_body(request))
    except TokenRefused as exc:
        return _token_answer(exc.enos_status, exc.message, None, exc.http_status)
    return _token_answer(0, "SUCCESS", {"accessToken": token, "expire": expire})


# -- Connection Service ---------------------------------------------------------------------------


def envelope(
    data: Any, request_id: str, *, code: int = 0, msg: str = "OK", status: int = 200
) -> JSONResponse:
    return JSONResponse({"code": code, "msg": msg, "requestId": request_id, "data": data}, status_code=status)


def failure(error: AssetfilesError, request_id: str) -> JSONResponse:
    code = 1203 if isinstance(error, TokenExpired) else error.http_status
    return envelope(None, request_id, code=code, msg=error.message, status=error.http_status)


async def _principal(request: Request) -> Principal:
    return await _services(request).enos_tokens.principal(request.headers.get("apim-accesstoken"))


async def files(request: Request) -> Response:
    """``/connect-service/v2.1/files?action=download|getFileInfo|getDownloadUrl|delete``."""
    request_id = str(uuid.uuid4())
    services = _services(request)
    params = request.query_params
    try:
        principal = await _principal(request)
        action = required(params.get("action"), "action")
        if action not in FILE_ACTIONS:
            raise BadInput(
                f"action: must be one of {', '.join(FILE_ACTIONS)}, not {action!r}", field="action"
            )
        if request.method not in (FILE_ACTIONS[action], "HEAD" if FILE_ACTIONS[action] == "GET" else ""):
            raise BadInput(
                f"action: {action} needs {FILE_ACTIONS[action]}, not {request.method}", field="action"
            )
        org_id = check_org(principal, params.get("orgId"))
        file_uri = check_file_uri(params.get("fileUri"))
        category = check_category(params.get("category"))
        owner = check_owner(params.get("assetId"), params.get("productKey"), params.get("deviceKey"))
        enos = services.enos_files
        if action == "delete":
            await enos.delete(principal, file_uri, category, owner)
            return envelope(None, request_id)
        content = await enos.find(principal, file_uri, category, owner, Permission.READ)
    except AssetfilesError as exc:
        return failure(exc, request_id)
    if action == "download":
        # EnOS answers this call with the bytes themselves (clients need not follow redirects):
        # from object storage they are streamed through, one Range passed on.
        where = await enos.open_bytes(content, request.headers.get("range"))
        if isinstance(where, BlobStream):
            return _streamed(where, content, request_id)
        response = file_response(request, content, where, accel_path(services, content.sha256))
        response.headers["X-Request-Id"] = request_id
        return response
    if action == "getDownloadUrl":
        url = enos.download_url(content).absolute(public_base_url(request, services.settings.public_url))
        return envelope(url, request_id)
    return envelope(
        {
            "orgId": org_id,
            "category": category,
            "fileUri": file_uri,
            "originalFilename": content.name,
            "fileSize": content.length,
            "md5": content.md5,
            "signMethod": "md5",
            "sign": content.md5,
            "createTime": content.created_at,
        },
        request_id,
    )


def _streamed(stream: BlobStream, content: Content, request_id: str) -> Response:
    headers = {"Accept-Ranges": "bytes", "X-Request-Id": request_id, "ETag": f'"{content.sha256}"',
               "Content-Disposition": content_disposition(content.name)}  # fmt: skip
    if stream.content_range:
        headers["Content-Range"] = stream.content_range
    if stream.status == 416:
        refused = envelope(None, request_id, code=416, msg="Range: not satisfiable", status=416)
        refused.headers["Content-Range"] = headers["Content-Range"]
        return refused
    if stream.length is not None:
        headers["Content-Length"] = str(stream.length)
    return StreamingResponse(
        stream.body, status_code=stream.status, headers=headers, media_type=content.content_type
    )


def _parse_message(raw: bytes) -> Any:
    """JSON, or the single-quoted JSON5 that EnOS's own Python samples send."""
    try:
        return json.loads(raw)
    except ValueError:
        pass
    try:
        return json5.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise BadInput("enos-message: not valid JSON", field="enos-message") from None


async def integration(request: Request) -> Response:
    """``POST /connect-service/v2.1/integration?action=postMeasurepoint|postAttribute|postEvent``."""
    request_id = str(uuid.uuid4())
    services = _services(request)
    settings = services.settings
    params = request.query_params
    workdir = Path(tempfile.mkdtemp(prefix="enos-upload-", dir=_upload_dir(settings.data_dir)))
    try:
        principal = await _principal(request)
        action = required(params.get("action"), "action")
        check_org(principal, params.get("orgId"))
        parser = EnosMultipart(
            workdir, max_message=settings.enos_max_message_bytes, max_file=settings.enos_max_file_bytes
        )
        received = await parser.read(request.headers.get("content-type"), request_body(request))
        message = _parse_message(received.message)
        uris = await services.enos_uploads.post(principal, action, message, received.files)
    except AssetfilesError as exc:
        response = failure(exc, request_id)
        response.headers["Connection"] = "close"  # the rest of the body may be unread
        return response
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return envelope(uris, request_id)


def _upload_dir(data_dir: Path) -> Path:
    path = data_dir / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return path


async def openapi(request: Request) -> Response:
    from assetfiles.server.openapi import DOCUMENT

    return JSONResponse(DOCUMENT)
