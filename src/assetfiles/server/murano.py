"""The Murano device HTTP API's provisioning and content calls ("Device2"), as ExoSense devices and
Exosite's murano-client (``gdc``) speak them.

- ``POST /provision/activate`` with the form ``id=<identity>``: the device's token, 40 characters,
  as ``text/plain`` (404 for an unknown identity, 409 when it is not enabled for activation or
  is activated already).
- ``GET /provision/download``: the names in the device's content area, one per line
  (``text/csv``); ``?id=<name>&info=true``: ``<content-type>,<size>,<updated>,<description>``;
  ``?id=<name>``: the bytes (``Range`` welcome).

Each product has its own host on the platform (``<product_id>.m2.exosite.io``): here a product's
device API is at ``/murano/{product_id}/...``, and at the root when the request's ``Host`` starts
with the product id (``<product_id>.<server host>``). A device authenticates with
``X-Exosite-CIK: <token>`` (murano-client's default), ``Authorization: token <token>``, or Basic
with its identity and token. Answers are plain text, errors too, with the error's status.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from assetfiles.errors import AssetfilesError, BadInput, NotFound
from assetfiles.model import DeviceRef, Principal, check_identifier
from assetfiles.server.bodies import read_body
from assetfiles.server.delivery import respond
from assetfiles.server.faces import INTERNAL_MESSAGE, Face, http_status, remember_principal, signing_in
from assetfiles.service.composition import Services

#: the largest activation body read (``id=<identity>``)
MAX_ACTIVATION_BYTES = 1024
TEXT = "text/plain; charset=utf-8"


def _text(error: AssetfilesError) -> Response:
    return PlainTextResponse(error.message, status_code=http_status(error), media_type=TEXT)


MURANO = Face(
    "murano",
    lambda _request, error, _id: _text(error),
    lambda _id: PlainTextResponse(INTERNAL_MESSAGE, status_code=500, media_type=TEXT),
)


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def product_of(request: Request) -> str:
    """The product a request is for: the path's ``/murano/{product_id}/``, else the first label of
    the Host (``<product_id>.<server host>``)."""
    named = request.path_params.get("product_id")
    if named is not None:
        return check_identifier(named, field="product_id")
    host = (request.headers.get("host") or "").split(":")[0].lower()
    label, dot, rest = host.partition(".")
    if dot and rest and not label.isdigit():
        try:
            return check_identifier(label, field="Host")
        except BadInput:
            pass
    raise NotFound(
        "no product: use /murano/<product_id>/... or the host <product_id>.<server host>", field="Host"
    )


def _credential(request: Request) -> tuple[str | None, str | None]:
    """(token, identity) from X-Exosite-CIK, ``Authorization: token``, or Basic identity:token."""
    cik = request.headers.get("x-exosite-cik")
    if cik:
        return cik.strip(), None
    authorization = request.headers.get("authorization") or ""
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "token":
        return value.strip() or None, None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None, None
        identity, colon, token = decoded.partition(":")
        return (token, identity) if colon else (None, None)
    return None, None


async def _device(request: Request, product_id: str) -> Principal:
    token, identity = _credential(request)
    async with signing_in(request, f"{product_id}\n{token}" if token else None):
        principal = await _services(request).device_sessions.token_principal(product_id, token, identity)
    await remember_principal(request, principal)
    return principal


@MURANO
async def activate(request: Request) -> Response:
    request.state.operation = "activate"
    product_id = product_of(request)
    raw = await read_body(request, MAX_ACTIVATION_BYTES)
    if raw is None:
        raise BadInput(f"body: an activation is at most {MAX_ACTIVATION_BYTES} bytes", field="body")
    try:
        form = parse_qs(raw.decode("utf-8"), strict_parsing=False)
    except UnicodeDecodeError:
        raise BadInput("body: not a form (id=<identity>)", field="body") from None
    identities = form.get("id") or []
    if len(identities) != 1 or not identities[0]:
        raise BadInput("id: the form must carry the device's identity once (id=<identity>)", field="id")
    device = DeviceRef(product_id, check_identifier(identities[0], field="id"))
    async with signing_in(request, None):
        token = await _services(request).device_sessions.activate(device)
    return PlainTextResponse(token, media_type=TEXT)


@MURANO
async def download(request: Request) -> Response:
    request.state.operation = "content"
    services = _services(request)
    principal = await _device(request, product_of(request))
    area = services.device_content
    name = request.query_params.get("id")
    if name is None:
        return _csv([[content.name] for content in await area.listing(principal)])
    content = await area.find(principal, name)
    info = request.query_params.get("info")
    if info is not None:
        if info.lower() != "true":
            raise BadInput(f"info: must be true, not {info!r}", field="info")
        description = content.tags.get("description", "")
        return _csv([[content.content_type, content.length, content.updated_at // 1000, description]])

    def refuse_range(status: int, content_range: str | None) -> Response:
        message = "Range: not satisfiable for this content" if status == 416 else "Range: malformed"
        refusal = PlainTextResponse(message, status_code=status, media_type=TEXT)
        if content_range is not None:
            refusal.headers["Content-Range"] = content_range
        return refusal

    accel_prefix = services.settings.accel_redirect_prefix
    delivery = area.delivery(content)
    return await respond(request, content, delivery, accel_prefix=accel_prefix, refuse_range=refuse_range)


def _csv(rows: list[list[object]]) -> Response:
    """Murano's ``text/csv`` answers: one line per row, fields quoted only where CSV needs it."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8")
