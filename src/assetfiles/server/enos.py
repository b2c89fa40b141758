"""The EnOS face: the token service, ``/connect-service/v2.1/files`` and integration uploads.

It parses query strings, headers and bodies, calls the EnOS services, and renders EnOS's
envelopes: ``{status, msg, business, data}`` for the token service and
``{code, msg, requestId, data}`` for the Connection Service, with a non-2xx HTTP status on
failure (the envelope's ``code`` is that status, except 1203 for an expired token). Every answer
that is not file bytes is an envelope: errors are mapped in one place per service (the
:data:`CONNECT` and :data:`TOKEN` faces), unexpected ones included, and a ``Range`` the file
cannot satisfy is answered as an envelope too (:class:`_RangeRefusalAsEnvelope`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from assetfiles.errors import AssetfilesError, BadInput, TokenExpired, TokenRefusal, TokenRefused
from assetfiles.model import Content, Permission, Principal
from assetfiles.server.auth import public_base_url
from assetfiles.server.bodies import body_chunks, read_body
from assetfiles.server.delivery import respond
from assetfiles.server.faces import INTERNAL_MESSAGE, Face, http_status, remember_principal, signing_in
from assetfiles.server.lenient_json import LenientJsonError, parse_lenient
from assetfiles.server.metrics import count_token_request, upload_in_flight
from assetfiles.server.multipart import EnosMultipart
from assetfiles.server.request_id import numeric_request_id, request_id_of
from assetfiles.service.composition import Services
from assetfiles.service.enos_files import check_category, check_file_uri, check_org, check_owner, required
from assetfiles.service.enos_uploads import UploadUrl
from assetfiles.service.maintenance import SPOOL_PREFIX

BUSINESS = "apim-token-service"
MAX_TOKEN_BODY = 16 * 1024
#: action -> (HTTP method, permission it needs)
FILE_ACTIONS = {
    "download": ("GET", Permission.READ),
    "getFileInfo": ("GET", Permission.READ),
    "getDownloadUrl": ("GET", Permission.READ),
    "delete": ("POST", Permission.WRITE),
}


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


# -- token service ------------------------------------------------------------------------------


def _token_answer(status: int, msg: str, data: Any, http_status: int = 200) -> JSONResponse:
    return JSONResponse(
        {"status": status, "msg": msg, "business": BUSINESS, "data": data}, status_code=http_status
    )


async def _token_body(request: Request) -> Any:
    """The JSON body, read within the body time bounds (408 for a client that stalls) and
    refused past 16 KiB without reading further."""
    raw = await read_body(request, MAX_TOKEN_BODY)
    if raw is None:
        raise TokenRefused("body: larger than 16 KiB", reason=TokenRefusal.MALFORMED, field="body")
    try:
        return json.loads(raw)
    except ValueError:
        raise TokenRefused(
            "body: must be a JSON object", reason=TokenRefusal.MALFORMED, field="body"
        ) from None


#: The token service's documented code for each refusal.
TOKEN_SERVICE_CODES = {
    TokenRefusal.REPLAYED: 1001,
    TokenRefusal.UNKNOWN_APPLICATION: 1002,
    TokenRefusal.BAD_SIGNATURE: 1003,
    TokenRefusal.MALFORMED: 1004,
    TokenRefusal.EMPTY: 1202,
    TokenRefusal.NOT_REFRESHABLE: 1204,
}
#: The Connection Service's code for an access token that has expired (others carry their status).
TOKEN_EXPIRED = 1203


def _token_error(request: Request, error: AssetfilesError, request_id: str) -> Response:
    status = http_status(error)
    code = TOKEN_SERVICE_CODES[error.reason] if isinstance(error, TokenRefused) else status
    count_token_request(getattr(request.state, "operation", "-"), str(code))
    return _token_answer(code, error.message, None, status)


#: The token service's error boundary: its own codes, and 500 in its own envelope.
TOKEN = Face("enos-token", _token_error, lambda _id: _token_answer(500, INTERNAL_MESSAGE, None, 500))


@TOKEN
async def token_get(request: Request) -> Response:
    request.state.operation = "get"
    return await _token_endpoint(request, _services(request).enos_tokens.get)


@TOKEN
async def token_refresh(request: Request) -> Response:
    request.state.operation = "refresh"
    return await _token_endpoint(request, _services(request).enos_tokens.refresh)


async def _token_endpoint(
    request: Request, operation: Callable[[Any], Awaitable[tuple[str, int]]]
) -> Response:
    body = await _token_body(request)
    app_key = body.get("appKey") if isinstance(body, dict) else None
    async with signing_in(request, f"app:{app_key}" if isinstance(app_key, str) else None):
        token, expire = await operation(body)
    count_token_request(request.state.operation, "issued")
    return _token_answer(0, "SUCCESS", {"accessToken": token, "expire": expire})


# -- Connection Service ---------------------------------------------------------------------------


def envelope(
    data: Any, request_id: str | int, *, code: int = 0, msg: str = "OK", status: int = 200
) -> JSONResponse:
    return JSONResponse({"code": code, "msg": msg, "requestId": request_id, "data": data}, status_code=status)


def failure(error: AssetfilesError, request_id: str) -> JSONResponse:
    status = http_status(error)
    code = TOKEN_EXPIRED if isinstance(error, TokenExpired) else status
    return envelope(None, request_id, code=code, msg=error.message, status=status)


#: The Connection Service's error boundary: every failure becomes an envelope, typed errors with
#: their status, anything unexpected 500 (logged with its traceback, never its text).
CONNECT = Face(
    "enos",
    lambda _request, error, request_id: failure(error, request_id),
    lambda request_id: envelope(None, request_id, code=500, msg=INTERNAL_MESSAGE, status=500),
)


async def _principal(request: Request) -> Principal:
    access_token = request.headers.get("apim-accesstoken")
    async with signing_in(request, access_token):
        principal = await _services(request).enos_tokens.principal(access_token)
    await remember_principal(request, principal)
    return principal


@CONNECT
async def files(request: Request) -> Response:
    """``/connect-service/v2.1/files?action=download|getFileInfo|getDownloadUrl|delete``."""
    request_id = request_id_of(request)
    services = _services(request)
    params = request.query_params
    principal = await _principal(request)
    action = required(params.get("action"), "action")
    if action not in FILE_ACTIONS:
        raise BadInput(f"action: must be one of {', '.join(FILE_ACTIONS)}, not {action!r}", field="action")
    request.state.operation = action
    method, permission = FILE_ACTIONS[action]
    if request.method not in (method, "HEAD" if method == "GET" else ""):
        raise BadInput(f"action: {action} needs {method}, not {request.method}", field="action")
    services.enos_files.authorize(principal, permission)  # before any parameter detail
    org_id = check_org(principal, params.get("orgId"))
    file_uri = check_file_uri(params.get("fileUri"))
    category = check_category(params.get("category"), optional=action == "delete")
    owner = check_owner(params.get("assetId"), params.get("productKey"), params.get("deviceKey"))
    enos = services.enos_files
    if action == "delete":
        await enos.delete(principal, file_uri, category, owner)
        return envelope({}, request_id)
    content = await enos.find(principal, file_uri, category, owner, permission)
    if action == "download":
        return await _download(request, services, content, request_id)
    if action == "getDownloadUrl":
        # The SDKs' FileDownloadResponse declares requestId an int (see docs/enos.md).
        url = services.contents.download_url(content).absolute(public_base_url(request, services.settings))
        return envelope(url, numeric_request_id(request_id))
    return envelope(
        {
            "orgId": org_id,
            "category": content.enos.category if content.enos else category,
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


async def _download(request: Request, services: Services, content: Content, request_id: str) -> Response:
    """EnOS answers ``download`` with the bytes themselves (clients need not follow redirects):
    from object storage they are streamed through, one Range passed on."""
    _ignore_unknown_range_unit(request)
    delivery = services.enos_files.delivery(content)
    accel_prefix = services.settings.accel_redirect_prefix

    def refuse_range(status: int, content_range: str | None) -> Response:
        msg = "Range: not satisfiable for this file" if status == 416 else "Range: malformed"
        refusal = envelope(None, request_id, code=status, msg=msg, status=status)
        if content_range is not None:
            refusal.headers["Content-Range"] = content_range
        return refusal

    return await respond(request, content, delivery, accel_prefix=accel_prefix, refuse_range=refuse_range)


def _ignore_unknown_range_unit(request: Request) -> None:
    """RFC 9110 (14.2): a Range in a unit other than bytes is ignored, and the whole file sent.

    Object storage does so; the local file response would refuse it, so it is dropped here and
    both backends answer alike.
    """
    value = request.headers.get("range")
    if value is not None and not value.strip().lower().startswith("bytes="):
        request.scope["headers"] = [(k, v) for k, v in request.scope["headers"] if k.lower() != b"range"]
        del request._headers  # Starlette caches the parsed headers


async def parse_message(raw: bytes) -> Any:
    """JSON; else the lenient JSON that EnOS's own samples send (single quotes, bare words).

    The lenient parser is pure Python, so it runs on a worker thread; the part's size is
    already bounded by ``enos_max_message_bytes`` and nesting by the parser.
    """
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        pass
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput("enos-message: not UTF-8 text", field="enos-message") from None
    try:
        return await anyio.to_thread.run_sync(parse_lenient, text)
    except LenientJsonError as exc:
        raise BadInput(f"enos-message: not valid JSON ({exc})", field="enos-message") from None


def query_flag(value: str | None, name: str) -> bool:
    if value is None or value.lower() == "false":
        return False
    if value.lower() == "true":
        return True
    raise BadInput(f"{name}: must be true or false, not {value!r}", field=name)


@CONNECT
async def integration(request: Request) -> Response:
    """``POST /connect-service/v2.1/integration?action=postMeasurepoint|postAttribute|postEvent``.

    With ``useLark=true`` the message only lists the files, and the answer says where to PUT
    each one (``data.uriInfoList``), as EnOS's SDKs expect in that mode.
    """
    request_id = request_id_of(request)
    services = _services(request)
    settings = services.settings
    params = request.query_params
    principal = await _principal(request)
    action = required(params.get("action"), "action")
    uploads = services.enos_uploads
    uploads.authorize(principal, action)  # before a byte of the body is read
    request.state.operation = action
    check_org(principal, params.get("orgId"))
    lark = query_flag(params.get("useLark"), "useLark")
    async with spooled_multipart(services, principal.org_id, accept_files=not lark) as parser:
        received = await parser.read(request.headers.get("content-type"), body_chunks(request))
        message = await parse_message(received.message)
        if lark:
            base = public_base_url(request, settings)
            reserved = await uploads.reserve(principal, action, message)
            return envelope({"uriInfoList": [upload_info(item, base) for item in reserved]}, request_id)
        with upload_in_flight():
            uris = await uploads.post(principal, action, message, received.files)
    return envelope(uris, request_id)


@asynccontextmanager
async def spooled_multipart(
    services: Services, org_id: str, *, accept_files: bool
) -> AsyncIterator[EnosMultipart]:
    """A parser for an EnOS multipart upload (integration or device) whose larger file parts go to
    a spool directory under ``data_dir/tmp`` (which ``gc`` sweeps after a crash), each bounded by
    ``enos_max_file_bytes`` and the organization's quota; the directory goes on exit."""
    settings = services.settings
    spool = settings.data_dir / "tmp"
    spool.mkdir(parents=True, exist_ok=True)
    quota_limit = await services.quotas.file_limit(org_id)
    max_file = settings.enos_max_file_bytes
    if quota_limit is not None:
        max_file = min(max_file, quota_limit)
    parser = EnosMultipart(
        spool,
        max_message=settings.enos_max_message_bytes,
        max_file=max_file,
        accept_files=accept_files,
        prefix=SPOOL_PREFIX,
    )
    try:
        yield parser
    finally:
        parser.discard()


def upload_info(item: UploadUrl, base: str) -> dict[str, Any]:
    """The SDKs' ``UriInfo`` for a file of an upload-URL (Lark) request: they PUT the file they
    named ``filename`` to ``uploadUrl`` with ``headers``."""
    return {
        "fileUri": item.file_uri,
        "uploadUrl": item.url.absolute(base),
        "filename": item.filename,
        "headers": {},
    }


async def openapi(request: Request) -> Response:
    from assetfiles.server.openapi import DOCUMENT

    return JSONResponse(DOCUMENT)
