"""Signed transfer URLs: downloads (Range, If-Range, ETag, If-None-Match, Repr-Digest) and uploads.

No Authorization header is read here: the URL's signature is the credential, bound to one
content (or pending upload), one organization and an expiry.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from assetfiles.server.auth import signed_parameters
from assetfiles.server.bodies import body_chunks, check_declared_length
from assetfiles.server.delivery import respond
from assetfiles.server.faces import TRANSFER
from assetfiles.server.metrics import upload_in_flight
from assetfiles.server.rendering import content_json
from assetfiles.service.composition import Services


@TRANSFER
async def download(request: Request) -> Response:
    services: Services = request.app.state.services
    request.state.operation = "download"
    content, delivery = await services.contents.open_download(
        request.path_params["content_id"], *signed_parameters(request)
    )
    request.state.org = content.org_id
    return await respond(request, content, delivery, accel_prefix=services.settings.accel_redirect_prefix)


@TRANSFER
async def upload(request: Request) -> Response:
    """PUT the bytes of a content reserved with ``createContentUpload`` or an EnOS upload URL."""
    services: Services = request.app.state.services
    request.state.operation = "upload"
    check_declared_length(request, services.settings.max_upload_bytes)
    with upload_in_flight():
        content = await services.uploads.receive(
            request.path_params["content_id"],
            *signed_parameters(request),
            body_chunks(request),
        )
    request.state.org = content.org_id
    return JSONResponse(content_json(content), status_code=201)
