"""The EnOS device HTTP API, as EnOS's device SDK (enos-http-sdk's ``HttpConnection``) speaks it.

- ``POST /auth/{productKey}/{deviceKey}``: a signed login (``signMethod``, ``lifetime`` in ms,
  ``sign``), answered ``{"code": 200, "data": {"sessionId"}, "message"}``.
- ``POST /multipart/sys/{pk}/{dk}/thing/measurepoint/post?sessionId=``: a multipart body with an
  ``enos-message`` part and one ``enos-file`` part per file; each file becomes that device's
  content. With ``&useLark=true`` only the message comes, and the answer lists where to PUT each
  file. Answered in the SDK's ack shape ``{"id", "code", "data", "message"}``, whose ``code`` the
  SDK reads (it does not look at the HTTP status on this path).
- ``GET /multipart/sys/{pk}/{dk}/file/download?sessionId=&fileUri=&category=`` (Range: 206),
  ``GET .../file/download/url`` and ``POST .../file/delete``: the device's own files only.

The SDK's sample broker URL ends in ``/``, so requests arrive as ``//auth/...``: the request
tracking collapses a path's leading slashes before routing. Errors are answered in the same
JSON shape with the status of the error; a failed request stores nothing.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from assetfiles.errors import AssetfilesError, BadInput
from assetfiles.model import Content, DeviceRef, Permission, Principal, check_identifier
from assetfiles.server.auth import public_base_url
from assetfiles.server.bodies import body_chunks, read_body
from assetfiles.server.delivery import respond
from assetfiles.server.enos import parse_message, query_flag, spooled_multipart, upload_info
from assetfiles.server.faces import INTERNAL_MESSAGE, Face, http_status, remember_principal, signing_in
from assetfiles.server.metrics import upload_in_flight
from assetfiles.server.multipart import Received
from assetfiles.service.composition import Services
from assetfiles.service.enos_files import Owner, check_category, check_file_uri

SUCCESS = 200
#: the largest login body read (the SDK's is a few hundred bytes)
MAX_LOGIN_BYTES = 16 * 1024


def answer(data: Any, *, code: int = SUCCESS, message: str = "", message_id: str | None = None,
           status: int = 200) -> JSONResponse:  # fmt: skip
    """The SDK's ack shape; ``id`` only when the request's message had one (some of the SDK's
    response classes declare it an int, so it is never invented)."""
    body: dict[str, Any] = {"code": code, "data": data, "message": message}
    if message_id is not None:
        body = {"id": message_id, **body}
    return JSONResponse(body, status_code=status)


def _error(request: Request, error: AssetfilesError, _request_id: str) -> Response:
    status = http_status(error)
    message_id = getattr(request.state, "message_id", None)
    return answer(None, code=status, message=error.message, message_id=message_id, status=status)


ENOS_DEVICE = Face(
    "enos-device", _error, lambda _id: answer(None, code=500, message=INTERNAL_MESSAGE, status=500)
)


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _device(request: Request) -> DeviceRef:
    return DeviceRef(
        check_identifier(request.path_params["product_key"], field="productKey"),
        check_identifier(request.path_params["device_key"], field="deviceKey"),
    )


async def _session(request: Request) -> Principal:
    device = _device(request)
    session_id = request.query_params.get("sessionId")
    async with signing_in(request, f"{device}\n{session_id}" if session_id else None):
        principal = await _services(request).device_sessions.principal(device, session_id)
    await remember_principal(request, principal)
    return principal


@ENOS_DEVICE
async def login(request: Request) -> Response:
    device = _device(request)
    request.state.operation = "login"
    raw = await read_body(request, MAX_LOGIN_BYTES)
    if raw is None:
        raise BadInput(f"body: a login is at most {MAX_LOGIN_BYTES} bytes", field="body")
    try:
        body = json.loads(raw)
    except ValueError:
        raise BadInput("body: not JSON (expected signMethod, lifetime, sign)", field="body") from None
    async with signing_in(request, None):
        session_id, _ = await _services(request).device_sessions.login(device, body)
    return answer({"sessionId": session_id})


@ENOS_DEVICE
async def measurepoint_post(request: Request) -> Response:
    services = _services(request)
    settings = services.settings
    principal = await _session(request)
    request.state.operation = "postMeasurepoint"
    lark = query_flag(request.query_params.get("useLark"), "useLark")
    async with spooled_multipart(services, principal.org_id, accept_files=not lark) as parser:
        try:
            received = await parser.read(request.headers.get("content-type"), body_chunks(request))
        except AssetfilesError:
            _note_message_id(request, parser.message)  # a file part failed after the message arrived
            raise
        _note_message_id(request, received.message)
        message = await parse_message(received.message)
        uploads = services.enos_uploads

        async def post() -> Any:
            if lark:
                base = public_base_url(request, settings)
                return [upload_info(item, base) for item in await uploads.device_reserve(principal, message)]
            with upload_in_flight():
                return await uploads.device_post(principal, message, received.files)

        session_id = request.query_params["sessionId"]
        message_id = getattr(request.state, "message_id", None)
        fingerprint = _fingerprint(message, received, lark)
        data = await services.device_sessions.once(session_id, message_id, fingerprint, post)
    return answer(data, message_id=getattr(request.state, "message_id", None))


def _fingerprint(message: Any, received: Received, lark: bool) -> str:
    """What makes a message the same message: its JSON (keys sorted), its mode, its files' bytes."""
    digest = hashlib.sha256(json.dumps(message, sort_keys=True, default=str).encode())
    digest.update(b"lark" if lark else b"parts")
    for part in received.files:
        digest.update(f"\n{part.filename}\n{part.sha256}".encode())
    return digest.hexdigest()


def _note_message_id(request: Request, message: bytes | bytearray | None) -> None:
    """The message's ``id``, echoed in the answer (also in an error's) as the SDK's ack carries it."""
    try:
        parsed = json.loads(message) if message else None
    except ValueError:
        return
    if (
        isinstance(parsed, dict)
        and isinstance(parsed.get("id"), str | int)
        and not isinstance(parsed["id"], bool)
    ):
        request.state.message_id = str(parsed["id"])


def _file_request(request: Request, principal: Principal) -> tuple[str, str | None, Owner]:
    file_uri = check_file_uri(request.query_params.get("fileUri"))
    category = check_category(request.query_params.get("category"), optional=True)
    assert principal.device is not None
    return file_uri, category, Owner(device=principal.device)


async def _own_file(request: Request, operation: str) -> tuple[Services, Content]:
    """The file ``fileUri`` names, among the files of the device whose session this is."""
    services = _services(request)
    principal = await _session(request)
    request.state.operation = operation
    file_uri, category, owner = _file_request(request, principal)
    return services, await services.enos_files.find(principal, file_uri, category, owner, Permission.READ)


@ENOS_DEVICE
async def download(request: Request) -> Response:
    services, content = await _own_file(request, "download")

    def refuse_range(status: int, content_range: str | None) -> Response:
        refusal = answer(None, code=status, message="Range: not satisfiable for this file" if status == 416
                         else "Range: malformed", status=status)  # fmt: skip
        if content_range is not None:
            refusal.headers["Content-Range"] = content_range
        return refusal

    delivery = services.enos_files.delivery(content)
    return await respond(request, content, delivery, accel_prefix=services.settings.accel_redirect_prefix,
                         refuse_range=refuse_range)  # fmt: skip


@ENOS_DEVICE
async def download_url(request: Request) -> Response:
    services, content = await _own_file(request, "getDownloadUrl")
    url = services.contents.download_url(content).absolute(public_base_url(request, services.settings))
    return answer(url)


@ENOS_DEVICE
async def delete(request: Request) -> Response:
    services = _services(request)
    principal = await _session(request)
    request.state.operation = "delete"
    file_uri, category, owner = _file_request(request, principal)
    await services.enos_files.delete(principal, file_uri, category, owner)
    return answer(None)
