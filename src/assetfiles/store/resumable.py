"""Resumable (tus) uploads in the catalog: the acknowledged offset, the lease, the completion.

The row, not the spool, says how many bytes are acknowledged: a spool may hold more (a crash
after the bytes were made durable and before the row moved on), and the next append starts from
the row's offset. Completing an upload inserts its content in the same transaction that marks
the row complete, so a retried completion never makes a second content.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.engine import Engine, RowMapping

from assetfiles.model import Content, now_ms
from assetfiles.store.contents import insert_contents
from assetfiles.store.schema import resumable_uploads as table
from assetfiles.store.schema import uploads
from assetfiles.store.sql import pending_and_retry_after
from assetfiles.store.threads import in_thread


class TooManyResumable(Exception):
    """The organization (or the device) holds as many unfinished uploads as it may."""

    def __init__(self, scope: str, retry_after: int) -> None:
        super().__init__(f"{scope}: retry in {retry_after} s")
        self.scope = scope
        #: seconds until the soonest of them expires
        self.retry_after = retry_after


class _AlreadyUsed(Exception):
    """Rolls back a completion whose reservation another upload used first."""


@dataclass(frozen=True)
class ResumableRecord:
    id: str
    org_id: str
    owner: str
    device: str | None
    spec: dict[str, Any]
    length: int | None
    received: int
    concat: str | None
    spool_state: dict[str, Any]
    created_at: int
    expires_at: int
    content_id: str | None

    @classmethod
    def of(cls, row: RowMapping) -> ResumableRecord:
        return cls(
            id=row["id"],
            org_id=row["org_id"],
            owner=row["owner"],
            device=row["device"],
            spec=json.loads(row["spec"]),
            length=row["length"],
            received=row["received"],
            concat=row["concat"],
            spool_state=json.loads(row["spool_state"]),
            created_at=row["created_at"],
            expires_at=row["expires_at"],
            content_id=row["content_id"],
        )


_COLUMNS = [column for column in table.c if column.name not in ("lease", "lease_until")]


class ResumableStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @in_thread
    def create(self, record: ResumableRecord, *, max_per_org: int | None, max_per_device: int | None) -> None:
        """Record a new upload, unless its organization or device holds its maximum of unfinished
        ones (completed and expired rows do not count)."""
        now = now_ms()
        unfinished = and_(table.c.content_id.is_(None), table.c.expires_at >= now)
        with self.engine.begin() as conn:
            scopes: list[tuple[str, Any, int | None]] = [
                ("organization", table.c.org_id == record.org_id, max_per_org)
            ]
            if record.device is not None:
                mine = and_(table.c.org_id == record.org_id, table.c.device == record.device)
                scopes.append(("device", mine, max_per_device))
            for scope, where, limit in scopes:
                if limit is None:
                    continue
                count, retry_after = pending_and_retry_after(
                    conn, table.c.expires_at, and_(where, unfinished), now
                )
                if count >= limit:
                    raise TooManyResumable(scope, retry_after)
            conn.execute(
                insert(table).values(
                    id=record.id,
                    org_id=record.org_id,
                    owner=record.owner,
                    device=record.device,
                    spec=json.dumps(record.spec),
                    length=record.length,
                    received=record.received,
                    concat=record.concat,
                    spool_state=json.dumps(record.spool_state),
                    created_at=record.created_at,
                    expires_at=record.expires_at,
                    content_id=record.content_id,
                )
            )

    @in_thread
    def get(self, upload_id: str) -> ResumableRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(*_COLUMNS).where(table.c.id == upload_id)).mappings().first()
        return ResumableRecord.of(row) if row is not None else None

    @in_thread
    def lease(self, upload_id: str, holder: str, until: int) -> bool:
        """Take (or renew, for the same ``holder``) the right to change the upload until ``until``."""
        now = now_ms()
        free = or_(table.c.lease.is_(None), table.c.lease_until < now, table.c.lease == holder)
        with self.engine.begin() as conn:
            taken = conn.execute(
                update(table).where(table.c.id == upload_id, free).values(lease=holder, lease_until=until)
            )
        return taken.rowcount == 1

    @in_thread
    def release(self, upload_id: str, holder: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(table)
                .where(table.c.id == upload_id, table.c.lease == holder)
                .values(lease=None, lease_until=None)
            )

    @in_thread
    def advance(
        self,
        upload_id: str,
        holder: str,
        *,
        received: int,
        length: int | None,
        spool_state: dict[str, Any],
        expires_at: int,
    ) -> bool:
        """Acknowledge bytes up to ``received``; False if ``holder`` no longer holds the lease."""
        with self.engine.begin() as conn:
            moved = conn.execute(
                update(table)
                .where(table.c.id == upload_id, table.c.lease == holder)
                .values(
                    received=received,
                    length=length,
                    spool_state=json.dumps(spool_state),
                    expires_at=expires_at,
                )
            )
        return moved.rowcount == 1

    @in_thread
    def complete(
        self, upload_id: str, content: Content, *, reservation: str | None, max_total_bytes: int | None
    ) -> bool:
        """Insert the content and mark the upload complete (and retire the reservation it came
        from) in one transaction; False if it was completed, terminated or its reservation used."""
        try:
            with self.engine.begin() as conn:
                marked = conn.execute(
                    update(table)
                    .where(table.c.id == upload_id, table.c.content_id.is_(None))
                    .values(content_id=content.id, lease=None, lease_until=None)
                )
                if marked.rowcount == 0:
                    return False
                if reservation is not None:
                    used = conn.execute(delete(uploads).where(uploads.c.id == reservation))
                    if used.rowcount == 0:
                        raise _AlreadyUsed
                insert_contents(conn, [content], max_total_bytes)
                return True
        except _AlreadyUsed:
            return False

    @in_thread
    def remove(self, upload_ids: list[str]) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(table).where(table.c.id.in_(upload_ids)))

    @in_thread
    def expired(self, before: int, limit: int = 500) -> list[ResumableRecord]:
        """Uploads whose time is up (finished or not): gc removes their spool and their row."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(*_COLUMNS).where(table.c.expires_at < before).order_by(table.c.expires_at).limit(limit)
            ).mappings()
            return [ResumableRecord.of(row) for row in rows]
