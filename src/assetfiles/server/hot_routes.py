"""The signed download route, dispatched without Starlette's router and middleware stack.

Fleets read back many small files: a 16 KiB signed download is a few tens of microseconds of
work (a signature, one catalog row, a file read), and Starlette's way to it (its error and
exception middlewares, a walk over every route's pattern, ``request_response``'s wrapper) cost
more than that work (bench/README.md, "16 KiB signed downloads"). This layer knows exactly one
route, ``GET``/``HEAD /transfer/content/{content_id}``, matched as the router would match it
(one path segment), and calls the same endpoint the router would: the TRANSFER face's wrapper
still counts the address's requests in flight, maps every error to the face's answer and names
the face and operation for the access log and metrics, which the middleware around this layer
writes as for every request. Any other request goes to the router unchanged.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from assetfiles.server.transfer import download

PREFIX = "/transfer/content/"


class HotRoutes:
    def __init__(self, app: Starlette) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        content_id = _download_route(scope)
        if content_id is None:
            await self.app(scope, receive, send)
            return
        scope["app"] = self.app  # what Starlette sets for request.app (its state holds the services)
        scope["path_params"] = {"content_id": content_id}
        request = Request(scope, receive)
        response = await download(request)
        await response(scope, receive, send)


def _download_route(scope: Scope) -> str | None:
    """The content id when the request is a signed download, as the router's
    ``/transfer/content/{content_id}`` (GET, HEAD) would match it; else None."""
    if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
        return None
    path: str = scope["path"]
    if not path.startswith(PREFIX):
        return None
    content_id = path[len(PREFIX) :]
    if not content_id or "/" in content_id:
        return None
    return content_id
