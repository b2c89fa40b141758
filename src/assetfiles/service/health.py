"""Readiness: can this process serve requests now (catalog answers at the current schema, blobs writable)?

Liveness (``/healthz``) needs nothing: a process that can answer is alive. Readiness is what a
load balancer should route by; each check is bounded in time so a hung database makes the
probe fail rather than hang.
"""

from __future__ import annotations

import logging

import anyio
import anyio.to_thread

from assetfiles.store.blobs import BlobStore
from assetfiles.store.catalog import Catalog
from assetfiles.store.database import schema_revisions

logger = logging.getLogger("assetfiles.health")
CHECK_SECONDS = 5.0


class Health:
    def __init__(self, catalog: Catalog, blobs: BlobStore) -> None:
        self.catalog = catalog
        self.blobs = blobs

    async def readiness(self) -> dict[str, str]:
        """Each check's outcome: ``ok`` or why not (no secret: URLs and credentials are not shown)."""
        checks: dict[str, str] = {}
        try:
            with anyio.fail_after(CHECK_SECONDS):
                current, head = await anyio.to_thread.run_sync(schema_revisions, self.catalog.engine)
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
