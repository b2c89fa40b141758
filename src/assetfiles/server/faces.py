"""One error boundary per face: typed errors to the face's dialect, anything else to its 500.

A face (GraphQL, EnOS Connection Service, EnOS token service, transfer, device) declares once
how it renders an :class:`~assetfiles.errors.AssetfilesError` and how it answers an unexpected
failure; its endpoints are wrapped with it and raise instead of catching. Unexpected failures
are logged with their traceback under the request id, and the answer carries that id but never
the exception's text.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from assetfiles.errors import (
    AssetfilesError,
    BadInput,
    BytesMissing,
    ClientGone,
    Conflict,
    FileTooLarge,
    Forbidden,
    Gone,
    InsufficientStorage,
    IntegrityMismatch,
    Locked,
    NotFound,
    PayloadTooLarge,
    QuotaFull,
    RateLimited,
    RequestTimeout,
    TokenRefused,
    TypeNotAccepted,
    Unauthenticated,
    UnsupportedMediaType,
    classify,
)
from assetfiles.model import Principal
from assetfiles.server.metrics import count_backend_error
from assetfiles.server.request_id import request_id_of
from assetfiles.server.throttle import Throttle, client_address
from assetfiles.service.audit import CURRENT_ADDRESS, CURRENT_FACE

logger = logging.getLogger("assetfiles.server")

Endpoint = Callable[[Request], Awaitable[Response]]
INTERNAL_MESSAGE = "internal error; the server log has the details under this request id"


@dataclass(frozen=True)
class Face:
    name: str
    #: (the request, the error, the request id) -> the face's answer
    render: Callable[[Request, AssetfilesError, str], Response]
    #: (the request id) -> the face's 500
    unexpected: Callable[[str], Response]

    def __call__(self, endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def guarded(request: Request) -> Response:
            request.state.face = self.name
            CURRENT_FACE.set(self.name)  # the request's own context: audit events name the face
            request_id = request_id_of(request)
            throttle: Throttle = request.app.state.throttle
            address = client_address(request)
            CURRENT_ADDRESS.set(address)
            try:
                with throttle.slot(address):
                    return await endpoint(request)
            except Exception as exc:
                error = classify(exc)
                if error is None:
                    logger.exception("%s request failed", self.name)
                    count_backend_error(exc)
                    response = self.unexpected(request_id)
                else:
                    if error is not exc:
                        logger.error("%s request refused: %s", self.name, exc)
                    response = self.render(request, error, request_id)
                    if isinstance(error, RateLimited):
                        response.headers["Retry-After"] = str(error.retry_after)
            if request.method in ("POST", "PUT", "PATCH"):
                response.headers["Connection"] = "close"  # the rest of the body may be unread
            return response

        return guarded


def signing_in(request: Request, credential: str | None) -> AbstractAsyncContextManager[None]:
    """Wrap every credential check: it counts failed sign-ins per address and refuses an address
    that has none left (see Throttle.sign_in). ``credential`` is what the caller presented."""
    throttle: Throttle = request.app.state.throttle
    return throttle.sign_in(client_address(request), credential)


async def remember_principal(request: Request, principal: Principal) -> None:
    """Who made the request, for the access log (never their secret); one request of that
    credential for its rate limit; its catalog calls from now on in its organization's share."""
    request.state.principal = principal
    request.app.state.services.shares.enter(principal.org_id)
    throttle: Throttle = request.app.state.throttle
    await throttle.credential_used(f"{principal.org_id}/{principal.kind}/{principal.name}")


#: The HTTP status of each domain error, for every face (the EnOS envelopes carry it too). A
#: subclass not listed answers as its nearest listed base; an unlisted error is a 500.
HTTP_STATUS: dict[type[AssetfilesError], int] = {
    BadInput: 400,
    IntegrityMismatch: 400,
    ClientGone: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    RequestTimeout: 408,
    Conflict: 409,
    Gone: 410,
    Locked: 423,
    PayloadTooLarge: 413,
    FileTooLarge: 413,
    TypeNotAccepted: 415,
    UnsupportedMediaType: 415,
    RateLimited: 429,
    BytesMissing: 500,
    InsufficientStorage: 507,
    QuotaFull: 507,
}


def http_status(error: AssetfilesError) -> int:
    if isinstance(error, TokenRefused):
        return 401 if error.refuses_credential else 400
    for kind in type(error).__mro__:
        if kind in HTTP_STATUS:
            return HTTP_STATUS[kind]
    return 500


# -- the REST dialect of the transfer and device endpoints -----------------------------------------


def rest_error(request: Request, error: AssetfilesError, request_id: str) -> Response:
    body: dict[str, Any] = {"code": error.code, "message": error.message, "requestId": request_id}
    if error.field:
        body["field"] = error.field
    return JSONResponse({"error": body}, status_code=http_status(error))


def rest_unexpected(request_id: str) -> Response:
    body = {"code": "INTERNAL", "message": INTERNAL_MESSAGE, "requestId": request_id}
    return JSONResponse({"error": body}, status_code=500)


def device_error(request: Request, error: AssetfilesError, request_id: str) -> Response:
    response = rest_error(request, error, request_id)
    if http_status(error) == 401:
        response.headers["WWW-Authenticate"] = 'Device realm="assetfiles"'
    return response


TRANSFER = Face("transfer", rest_error, rest_unexpected)
DEVICE = Face("device", device_error, rest_unexpected)
