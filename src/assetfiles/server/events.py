"""``GET /api/events``: the organization's content changes as server-sent events (an addition).

Authenticated like the GraphQL API (``Authorization: Automation <token>``, read permission).
Each change is an event ``content`` whose id is the change's id and whose data is JSON:
``{"change": "created|updated|deleted", "id": <content id>, "associations": [{"type", "id"}],
"at": <ISO 8601>}``. Reconnect with ``Last-Event-ID`` to resume; an id the feed no longer
covers gets a ``reset`` event first (list again). The server ends a stream after
``events_stream_seconds`` (clients reconnect, as EventSource does by itself), or within
RECHECK_SECONDS of its token being revoked or expiring (the reconnect then gets 401), and sends
a comment every 15 s so idle proxies keep it open. Errors are the REST dialect of the transfer
endpoints.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from sse_starlette.sse import EventSourceResponse
from starlette.requests import Request
from starlette.responses import Response

from assetfiles.model import Principal, ms_to_iso
from assetfiles.server.auth import bearer_secret
from assetfiles.server.faces import TRANSFER, remember_principal, signing_in
from assetfiles.service.changes import LAST_EVENT_ID, PAGE, ChangeFeed, StreamStart, parse_last_event_id
from assetfiles.service.composition import Services

PING_SECONDS = 15
#: How often an open stream checks that its token is still valid.
RECHECK_SECONDS = 5.0


@TRANSFER
async def events(request: Request) -> Response:
    services: Services = request.app.state.services
    request.state.operation = "events"
    async with signing_in(request, request.headers.get("authorization")):
        secret = bearer_secret(request, ("automation", "bearer"))
        principal = await services.access.token_principal(secret)
    await remember_principal(request, principal)
    last = parse_last_event_id(request.headers.get(LAST_EVENT_ID))
    feed = services.changes
    release = feed.open_stream(principal)  # held until the stream ends; 429 now when none is free
    try:
        start = await feed.start(principal, last)
    except BaseException:
        release()
        raise
    settings = services.settings
    stream = _stream(
        feed,
        principal,
        start,
        settings.events_poll_seconds,
        settings.events_stream_seconds,
        lambda: services.access.token_valid(secret),
    )

    async def released() -> AsyncIterator[dict[str, Any]]:
        try:
            async for event in stream:
                yield event
        finally:
            release()

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return EventSourceResponse(released(), ping=PING_SECONDS, headers=headers, send_timeout=30)


async def _stream(
    feed: ChangeFeed,
    principal: Principal,
    start: StreamStart,
    poll_seconds: float,
    lifetime: float,
    still_valid: Callable[[], Awaitable[bool]],
) -> AsyncIterator[dict[str, Any]]:
    after = start.after
    yield {"retry": 2000, "comment": "assetfiles content changes"}
    if start.reset:
        reason = "the event id is older than the feed keeps, or unknown: list again"
        yield {"event": "reset", "id": str(after), "data": json.dumps({"reason": reason})}
    ends = time.monotonic() + lifetime
    checked = time.monotonic()
    while time.monotonic() < ends:
        if time.monotonic() - checked >= RECHECK_SECONDS:
            if not await still_valid():
                return  # revoked or expired: what was sent stays sent, nothing more is
            checked = time.monotonic()
        changes = await feed.read(principal, after)
        for change in changes:
            after = change.id
            data = {
                "change": change.change,
                "id": change.content_id,
                "associations": [{"type": link.type, "id": link.id} for link in change.associations],
                "at": ms_to_iso(change.at),
            }
            yield {"event": "content", "id": str(change.id), "data": json.dumps(data)}
        if len(changes) < PAGE:
            await asyncio.sleep(poll_seconds)
