"""Signed transfer URLs: downloads (Range, If-Range, ETag, If-None-Match, Repr-Digest) and uploads.

No Authorization header is read here: the URL's signature is the credential, bound to one
content (or pending upload), one organization and an expiry.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

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


def signed_parameters(request: Request) -> tuple[str | None, str | None, str | None]:
    """The ``org``, ``exp`` and ``sig`` of a signed URL's query, as ``request.query_params`` reads
    them (the last of repeated names wins, blanks are kept). The URLs we sign carry nothing
    escaped, so their query is split here; one with ``%`` or ``+`` in it is decoded in full."""
    query: bytes = request.scope["query_string"]
    if b"%" in query or b"+" in query:
        params = request.query_params
        return params.get("org"), params.get("exp"), params.get("sig")
    found: dict[str, str] = {}
    for pair in query.decode("latin-1").split("&"):
        name, _, value = pair.partition("=")
        if name in _SIGNED:
            found[name] = value
    return found.get("org"), found.get("exp"), found.get("sig")


_SIGNED = frozenset({"org", "exp", "sig"})
