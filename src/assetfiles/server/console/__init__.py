"""The web console: static pages at ``/console`` that use only the public API.

Everything the console does goes through ``/api/graphql`` and the signed transfer URLs, exactly
as a script would; this module only serves its files, with headers that keep hostile names,
tags and contents from running anything: a Content-Security-Policy with no inline script and no
framing, no Referer (signed URLs and the page never leak through it), and ``nosniff``.
The JavaScript is plain ES modules shipped in the package (vendored libraries included), so the
console works offline, from a clone, with no build step.
"""

from __future__ import annotations

import mimetypes
import os
from pathlib import Path
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from assetfiles.config import Settings

STATIC_DIR = Path(__file__).parent / "static"
FACE = "console"

# Python 3.11's table lacks .mjs; browsers refuse to run a module served as anything else.
mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("text/javascript", ".js")


def blob_origins(settings: Settings) -> list[str]:
    """Origins the browser may load file bytes from besides our own: the object store's, when
    download URLs are presigned by it (previews and downloads then go straight to it)."""
    if not settings.blob_url:
        return []
    endpoint = settings.s3_endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        parts = urlsplit(endpoint)
        return [f"{parts.scheme}://{parts.netloc}"]
    return ["https://*.amazonaws.com"]


def security_headers(settings: Settings) -> dict[str, str]:
    """The console's headers: scripts and styles only from our files, bytes only from us (or the
    object store), never framed, never a Referer."""
    extra = " ".join(blob_origins(settings))
    files = f"'self' {extra}".strip()
    policy = "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src {files} blob: data:",
            f"media-src {files} blob:",
            f"connect-src {files}",
            "worker-src 'self'",
            "font-src 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'none'",
        ]
    )
    return {
        "Content-Security-Policy": policy,
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Cross-Origin-Opener-Policy": "same-origin",
    }


class ConsoleFiles(StaticFiles):
    """The console's static files, each with the console's security headers.

    Files are revalidated on every load (``no-cache`` with Starlette's ETag), so an upgraded
    server never runs against a stale mix of old and new modules.
    """

    def __init__(self, headers: dict[str, str]) -> None:
        super().__init__(directory=STATIC_DIR, follow_symlink=False)
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope.setdefault("state", {})["face"] = FACE
        await super().__call__(scope, receive, send)

    def file_response(self, *args: object, **kwargs: object) -> Response:
        response = super().file_response(*args, **kwargs)  # type: ignore[arg-type]
        response.headers.update(self.headers)
        response.headers["Cache-Control"] = "no-cache"
        return response


def console_routes(settings: Settings) -> list[BaseRoute]:
    """``/console`` (the page) and ``/console/static/...`` (its modules, styles and vendored code)."""
    headers = security_headers(settings)
    index = STATIC_DIR / "index.html"

    async def page(request: Request) -> Response:
        request.state.face = FACE
        return FileResponse(index, headers={**headers, "Cache-Control": "no-cache"}, media_type="text/html")

    async def slash(request: Request) -> Response:
        request.state.face = FACE
        return RedirectResponse("/console", status_code=308)

    return [
        Route("/console", page, methods=["GET", "HEAD"]),
        Route("/console/", slash, methods=["GET", "HEAD"]),
        Mount("/console/static", app=ConsoleFiles(headers)),
    ]
