"""The audit log: what was created, retagged or deleted, by whom and through which face;
tokens created and revoked; failed sign-ins, counted.

Services record events as they happen; the face a request came through is known from the
context (a face sets :data:`CURRENT_FACE` for its requests; commands run as ``cli``).
Failed sign-ins are counted in memory per face and minute and written as one row each by
:meth:`Audit.flush` (every few seconds while serving, and at shutdown), so a flood of bad
credentials costs no write per attempt.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections import Counter
from typing import Any

from assetfiles.model import Creator, Principal, now_ms
from assetfiles.store.audit import AuditEvent, AuditStore

logger = logging.getLogger("assetfiles.audit")

CURRENT_FACE: contextvars.ContextVar[str] = contextvars.ContextVar("audit_face", default="cli")
#: the client's address (behind trusted proxies, the one they forwarded), set by a face likewise
CURRENT_ADDRESS: contextvars.ContextVar[str | None] = contextvars.ContextVar("audit_address", default=None)
MINUTE_MS = 60_000


class Audit:
    def __init__(self, store: AuditStore) -> None:
        self.store = store
        self._failures: Counter[tuple[int, str, str | None]] = Counter()

    async def record(
        self,
        action: str,
        *,
        org_id: str | None,
        actor: Principal | Creator | None = None,
        target: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        kind, name = _actor(actor)
        event = AuditEvent(now_ms(), action, CURRENT_FACE.get(), org_id, kind, name, target, 1, detail or {})
        await self.store.append([event])

    def sign_in_failed(self) -> None:
        """Count one refused credential, per minute, face and client address (written by the next
        flush)."""
        self._failures[(now_ms() // MINUTE_MS * MINUTE_MS, CURRENT_FACE.get(), CURRENT_ADDRESS.get())] += 1

    async def flush(self) -> None:
        if not self._failures:
            return
        counted, self._failures = self._failures, Counter()
        events = [
            AuditEvent(
                minute, "auth.failed", face, count=count, detail={"address": address} if address else {}
            )
            for (minute, face, address), count in sorted(counted.items(), key=lambda item: str(item[0]))
        ]
        await self.store.append(events)

    async def flush_every(self, seconds: float) -> None:
        """Run until cancelled (the server's lifespan); a failed write is logged and retried later."""
        while True:
            await asyncio.sleep(seconds)
            try:
                await self.flush()
            except Exception:
                logger.exception("could not write the counted sign-in failures")

    async def read(self, org_id: str | None, since: int | None, limit: int = 1000) -> list[AuditEvent]:
        return await self.store.read(org_id, since, limit)


def _actor(actor: Principal | Creator | None) -> tuple[str | None, str | None]:
    if actor is None:
        return None, None
    if isinstance(actor, Principal):
        return actor.kind.value, actor.name
    name = str(actor.device) if actor.device is not None else actor.name
    return actor.kind.value, name
