"""Pending uploads: reservations made by ``createContentUpload`` and used by the PUT to their URL.

Completing one inserts its content in the same transaction that retires the reservation, so a
URL used twice (or by two racing PUTs) makes one content.
"""

from __future__ import annotations

import json
import math
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import Engine

from assetfiles.model import Content, now_ms
from assetfiles.store.contents import insert_contents
from assetfiles.store.schema import uploads
from assetfiles.store.threads import in_thread


class TooManyPending(Exception):
    """An organization holds as many unused upload reservations as it may; nothing was written."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry in {retry_after} s")
        #: seconds until the oldest pending reservation expires
        self.retry_after = retry_after


class UploadStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @in_thread
    def insert_upload(
        self,
        upload_id: str,
        org_id: str,
        spec: dict[str, Any],
        expires_at: int,
        *,
        max_pending: int | None = None,
    ) -> None:
        """Record a reservation; with ``max_pending``, refuse (TooManyPending) past that many unused
        reservations in the organization. Expired ones are cleared first."""
        now = now_ms()
        with self.engine.begin() as conn:
            conn.execute(delete(uploads).where(uploads.c.expires_at < now))
            if max_pending is not None:
                mine = uploads.c.org_id == org_id
                pending, soonest = conn.execute(
                    select(func.count(), func.min(uploads.c.expires_at)).where(mine)
                ).one()
                if pending >= max_pending:
                    raise TooManyPending(max(1, math.ceil((soonest - now) / 1000)))
            conn.execute(
                insert(uploads).values(
                    id=upload_id, org_id=org_id, spec=json.dumps(spec), expires_at=expires_at
                )
            )

    @in_thread
    def get_upload(self, upload_id: str, org_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            spec = conn.scalar(
                select(uploads.c.spec).where(uploads.c.id == upload_id, uploads.c.org_id == org_id)
            )
        return json.loads(spec) if spec is not None else None

    @in_thread
    def complete_upload(self, upload_id: str, content: Content, max_total_bytes: int | None = None) -> bool:
        """Insert the uploaded content and retire its upload record; False if already completed."""
        with self.engine.begin() as conn:
            removed = conn.execute(delete(uploads).where(uploads.c.id == upload_id))
            if removed.rowcount == 0:
                return False
            insert_contents(conn, [content], max_total_bytes)
            return True

    # -- quotas and usage ----------------------------------------------------------------------
