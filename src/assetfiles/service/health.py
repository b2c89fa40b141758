"""Readiness: can this process serve requests now (catalog answers at the current schema, blobs writable)?

Liveness (``/healthz``) needs nothing: a process that can answer is alive. Readiness is what a
load balancer should route by, and anybody may ask for it, so it is cheap and bounded whatever
the callers do:

- one check runs at a time per process; probes that arrive meanwhile wait for its answer, and
  an answer is reused for FRESH_SECONDS, so a thousand probes cost what one does;
- the check answers within CHECK_SECONDS: its catalog query runs on a thread of its own
  (not one of the worker threads every catalog call needs) which is abandoned when it overruns,
  and PostgreSQL is told to give up on it; until that thread comes back no other is started,
  and the probe says the catalog does not answer.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import anyio
import anyio.to_thread
from sqlalchemy import Engine

from assetfiles.store.blobs import BlobStore
from assetfiles.store.database import schema_revisions

logger = logging.getLogger("assetfiles.health")
CHECK_SECONDS = 5.0
#: A readiness answer is reused this long.
FRESH_SECONDS = 1.0


class Health:
    def __init__(self, engine: Engine, blobs: BlobStore) -> None:
        self.engine = engine
        self.blobs = blobs
        #: how long an answer is reused (FRESH_SECONDS)
        self.fresh_seconds = FRESH_SECONDS
        self._answer: tuple[float, dict[str, str]] | None = None
        self._checking: asyncio.Task[dict[str, str]] | None = None
        #: set while a catalog check's thread runs (it may outlive the probe that started it)
        self._catalog_busy = threading.Event()
        self._threads = anyio.CapacityLimiter(1)

    async def readiness(self) -> dict[str, str]:
        """Each check's outcome: ``ok`` or why not (no secret: URLs and credentials are not shown)."""
        if self._answer is not None and time.monotonic() - self._answer[0] < self.fresh_seconds:
            return self._answer[1]
        if self._checking is None or self._checking.done():
            self._checking = asyncio.ensure_future(self._check())
        checks = await asyncio.shield(self._checking)
        self._answer = (time.monotonic(), checks)
        return checks

    async def _check(self) -> dict[str, str]:
        checks: dict[str, str] = {}
        try:
            if self._catalog_busy.is_set():
                raise TimeoutError("the previous check has not come back")
            with anyio.fail_after(CHECK_SECONDS):
                current, head = await anyio.to_thread.run_sync(
                    self._revisions, self.engine, abandon_on_cancel=True, limiter=self._threads
                )
            checks["catalog"] = "ok"
            checks["migrations"] = "ok" if current == head else f"at {current}, this version needs {head}"
        except Exception as exc:
            logger.warning("readiness: the catalog does not answer: %s", type(exc).__name__)
            checks["catalog"] = f"does not answer ({type(exc).__name__})"
            checks["migrations"] = "unknown"
        try:
            with anyio.fail_after(CHECK_SECONDS):
                await self.blobs.check_writable()
            checks["blobs"] = "ok"
        except Exception as exc:
            logger.warning("readiness: the blob store is not writable: %s", type(exc).__name__)
            checks["blobs"] = f"not writable ({type(exc).__name__})"
        return checks

    def _revisions(self, engine: Engine) -> tuple[str | None, str | None]:
        self._catalog_busy.set()
        try:
            return schema_revisions(engine, timeout_seconds=CHECK_SECONDS)
        finally:
            self._catalog_busy.clear()
