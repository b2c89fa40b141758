"""Pending uploads: reservations made by ``createContentUpload`` and used by the PUT to their URL.

Completing one inserts its content in the same transaction that retires the reservation, so a
URL used twice (or by two racing PUTs) makes one content.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.engine import Connection, Engine

from assetfiles.model import Content, now_ms
from assetfiles.store.contents import insert_contents
from assetfiles.store.group_commit import GroupCommit
from assetfiles.store.point_reads import PointRead
from assetfiles.store.schema import uploads
from assetfiles.store.sql import pending_and_retry_after


class TooManyPending(Exception):
    """An organization holds as many unused upload reservations as it may; nothing was written."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry in {retry_after} s")
        #: seconds until the oldest pending reservation expires
        self.retry_after = retry_after


class UploadStore:
    def __init__(self, engine: Engine, writes: GroupCommit | None = None) -> None:
        """``writes``: the group commit shared with the other stores that group their writes: a
        reservation and its completion are each one short write per upload (store/group_commit.py)."""
        self.engine = engine
        self.writes = writes or GroupCommit(engine)

    async def insert_upload(
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
        reservation = _Reservation(upload_id, org_id, json.dumps(spec), expires_at, max_pending)
        await self.writes.submit(_reserve, reservation)

    async def get_upload(self, upload_id: str, org_id: str) -> dict[str, Any] | None:
        row = await _RESERVATION.first(self.engine, upload_id=upload_id, org_id=org_id)
        return json.loads(row[0]) if row is not None else None

    async def complete_upload(
        self, upload_id: str, content: Content, max_total_bytes: int | None = None
    ) -> bool:
        """Insert the uploaded content and retire its upload record; False if already completed."""
        return await self.writes.submit(_complete, (upload_id, content, max_total_bytes))


@dataclass(frozen=True)
class _Reservation:
    upload_id: str
    org_id: str
    spec: str
    expires_at: int
    max_pending: int | None


_RESERVATION = PointRead(
    select(uploads.c.spec).where(
        uploads.c.id == bindparam("upload_id"), uploads.c.org_id == bindparam("org_id")
    )
)


def _reserve(conn: Connection, reservations: Sequence[_Reservation]) -> list[None]:
    """Reservations in one transaction, each counted after those before it (TooManyPending fails the
    group, and each is then retried alone: see store/group_commit.py)."""
    now = now_ms()
    conn.execute(delete(uploads).where(uploads.c.expires_at < now))
    for reservation in reservations:
        if reservation.max_pending is not None:
            mine = uploads.c.org_id == reservation.org_id
            pending, retry_after = pending_and_retry_after(conn, uploads.c.expires_at, mine, now)
            if pending >= reservation.max_pending:
                raise TooManyPending(retry_after)
        conn.execute(
            insert(uploads).values(
                id=reservation.upload_id,
                org_id=reservation.org_id,
                spec=reservation.spec,
                expires_at=reservation.expires_at,
            )
        )
    return [None] * len(reservations)


def _complete(conn: Connection, completions: Sequence[tuple[str, Content, int | None]]) -> list[bool]:
    """Each completion retires its reservation and inserts its content: False for one retired already.

    Two completions of one reservation in the same group: the second finds it gone, as it would
    in a transaction of its own after the first."""
    done = []
    for upload_id, content, max_total_bytes in completions:
        removed = conn.execute(delete(uploads).where(uploads.c.id == upload_id))
        if removed.rowcount == 0:
            done.append(False)
            continue
        insert_contents(conn, [content], max_total_bytes)
        done.append(True)
    return done
