"""The outermost layer of every request: its id, its access-log line, its metrics.

Pure ASGI (no per-request task or body buffering), so it costs little on the small-file path.
The access line holds the method, the path **without** its query string (signed URLs carry
their signature there, EnOS calls their parameters), the status, bytes in and out, the
duration, the face, and who called (principal and organization, never a credential).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assetfiles.logs import REQUEST_ID, log_with_fields
from assetfiles.model import Principal
from assetfiles.server.metrics import Metrics
from assetfiles.server.proxies import ProxyHeaders
from assetfiles.server.request_id import HEADER, accepted_request_id, new_request_id

access_logger = logging.getLogger("assetfiles.access")
_HEADER_BYTES = HEADER.lower().encode("latin-1")
logger = logging.getLogger("assetfiles.server")

_FALLBACK_500 = (
    b'{"error": {"code": "INTERNAL", "message": "internal error; the server log has the details"}}'
)


@dataclass
class _Outcome:
    started: bool = False
    status: int = 500
    sent: int = 0
    received: int = 0
    declared: int | None = None  # Content-Length, for the file fast path that sends no body messages


class RequestTracking:
    def __init__(
        self,
        app: ASGIApp,
        *,
        access_log: bool = True,
        metrics: Metrics | None = None,
        proxies: ProxyHeaders | None = None,
    ) -> None:
        self.app = app
        self.access_log = access_log
        self.metrics = metrics
        self.proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.proxies is not None:
            self.proxies.resolve(scope)
        _collapse_leading_slashes(scope)
        sent_id = next((v for k, v in scope["headers"] if k == b"x-request-id"), None)
        request_id = accepted_request_id(sent_id.decode("latin-1") if sent_id else None) or new_request_id()
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        outcome = _Outcome()

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                outcome.received += len(message.get("body", b""))
            return message

        async def tagging_send(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.start":
                outcome.started = True
                outcome.status = message["status"]
                # one pass over the raw headers (this runs for every answer, small files included)
                headers = list(message.get("headers", ()))
                length = None
                tagged = False
                for name, value in headers:
                    lowered = name.lower()
                    if lowered == b"content-length":
                        length = value
                    elif lowered == _HEADER_BYTES:
                        tagged = True
                if not tagged:
                    headers.append((_HEADER_BYTES, request_id.encode("latin-1")))
                message["headers"] = headers
                outcome.declared = int(length) if length and length.isdigit() else None
            elif kind == "http.response.body":
                outcome.sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, counting_receive, tagging_send)
        except Exception:
            # Faces catch their own failures; what reaches here escaped routing or a streamed body.
            logger.exception("request failed outside any face")
            if not outcome.started:
                await tagging_send(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await tagging_send({"type": "http.response.body", "body": _FALLBACK_500})
        finally:
            REQUEST_ID.reset(token)
            duration = time.perf_counter() - started
            # The file fast path (pathsend) sends no body messages: its Content-Length says it.
            out = 0 if scope["method"] == "HEAD" else outcome.sent or outcome.declared or 0
            self._record(scope, state, outcome.status, outcome.received, out, duration, request_id)

    def _record(
        self,
        scope: Scope,
        state: dict[str, Any],
        status: int,
        received: int,
        sent: int,
        duration: float,
        request_id: str,
    ) -> None:
        face = state.get("face") or "other"
        principal = state.get("principal")
        who = principal.name if isinstance(principal, Principal) else None
        org = principal.org_id if isinstance(principal, Principal) else state.get("org")
        if self.metrics is not None:
            operation = state.get("operation") or "-"
            self.metrics.observe_request(face, operation, scope["method"], status, duration, received, sent)
        if not self.access_log:
            return
        path = scope["path"]
        client = scope["client"][0] if scope.get("client") else "-"
        log_with_fields(
            access_logger,
            logging.INFO,
            "%s %s %d %dB %.1fms face=%s principal=%s org=%s client=%s",
            (scope["method"], path, status, sent, duration * 1000, face, who or "-", org or "-", client),
            {
                "client": client,
                "request_id": request_id,
                "method": scope["method"],
                "path": path,
                "status": status,
                "bytes_out": sent,
                "bytes_in": received,
                "duration_ms": round(duration * 1000, 3),
                "face": face,
                "principal": who,
                "org": org,
            },
        )


def _collapse_leading_slashes(scope: Scope) -> None:
    """``//auth/...`` is ``/auth/...``: EnOS's device SDK samples end the broker URL in ``/`` and
    append paths that start with one, and devices cannot be told otherwise."""
    path: str = scope["path"]
    if path.startswith("//"):
        scope["path"] = "/" + path.lstrip("/")
        raw = scope.get("raw_path")
        if isinstance(raw, bytes):
            scope["raw_path"] = b"/" + raw.lstrip(b"/")
