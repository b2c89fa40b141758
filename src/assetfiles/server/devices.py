"""``PUT /api/devices/{product_id}/{device_id}/content?name=...``: a device uploads a file as itself.

The device authenticates with its own credential (``Authorization: Device <secret>``); the file
becomes device content (createdBy Device) of every asset the device feeds. An optional
``Repr-Digest`` or ``Content-Digest`` header (RFC 9530, sha-256) is verified before anything is
stored.
"""

from __future__ import annotations

import base64
import binascii
import re

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from assetfiles.errors import BadInput
from assetfiles.model import DeviceRef, check_identifier
from assetfiles.server.auth import bearer_secret
from assetfiles.server.bodies import body_chunks, check_declared_length
from assetfiles.server.faces import DEVICE, remember_principal, signing_in
from assetfiles.server.metrics import upload_in_flight
from assetfiles.server.rendering import content_json
from assetfiles.service.composition import Services
from assetfiles.service.uploads import ContentSpec

_SHA256_FIELD = re.compile(r"(?:^|,)\s*sha-256=:([A-Za-z0-9+/=]+):")


def expected_sha256(request: Request) -> str | None:
    for header in ("repr-digest", "content-digest"):
        value = request.headers.get(header)
        if value is None:
            continue
        match = _SHA256_FIELD.search(value)
        if match is None:
            raise BadInput(
                f"{header.title()}: no sha-256 value (expected 'sha-256=:<base64>:')", field=header
            )
        try:
            digest = base64.b64decode(match.group(1), validate=True)
        except binascii.Error:
            raise BadInput(f"{header.title()}: the sha-256 value is not base64", field=header) from None
        if len(digest) != 32:
            raise BadInput(f"{header.title()}: the sha-256 value must be 32 bytes", field=header)
        return digest.hex()
    return None


@DEVICE
async def device_upload(request: Request) -> Response:
    services: Services = request.app.state.services
    request.state.operation = "upload"
    device = DeviceRef(
        check_identifier(request.path_params["product_id"], field="product_id"),
        check_identifier(request.path_params["device_id"], field="device_id"),
    )
    credential = request.headers.get("authorization")
    async with signing_in(request, f"{device}\n{credential}" if credential else None):
        principal = await services.access.device_principal(device, bearer_secret(request, ("device",)))
    await remember_principal(request, principal)
    name = request.query_params.get("name")
    if name is None:
        raise BadInput("name: the query parameter is required", field="name")
    check_declared_length(request, services.settings.max_upload_bytes)
    spec = ContentSpec(name=name, content_type=request.headers.get("content-type"))
    with upload_in_flight():
        content = await services.uploads.device_upload(
            principal, spec, body_chunks(request), expected_sha256=expected_sha256(request)
        )
    return JSONResponse(content_json(content), status_code=201)
