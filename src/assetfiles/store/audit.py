"""The audit log's rows: appended, read back by organization and time; never updated."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, insert, select
from sqlalchemy.engine import Connection

from assetfiles.store.group_commit import GroupCommit
from assetfiles.store.schema import audit_events
from assetfiles.store.threads import in_thread


@dataclass(frozen=True)
class AuditEvent:
    at: int
    action: str
    face: str
    org_id: str | None = None
    actor_kind: str | None = None
    actor: str | None = None
    target: str | None = None
    count: int = 1
    detail: dict[str, Any] = field(default_factory=dict)


class AuditStore:
    def __init__(self, engine: Engine, writes: GroupCommit | None = None) -> None:
        """``writes``: the group commit shared with the other stores that group their writes."""
        self.engine = engine
        self.writes = writes or GroupCommit(engine)

    async def append(self, events: Sequence[AuditEvent]) -> None:
        """Durable when it returns; concurrent appends share a transaction (store/group_commit.py)."""
        if events:
            await self.writes.submit(_append_grouped, tuple(events))

    @in_thread
    def read(self, org_id: str | None, since: int | None, limit: int) -> list[AuditEvent]:
        """Oldest first, at most ``limit`` (the newest ``limit`` when there are more)."""
        query = select(audit_events).order_by(audit_events.c.at.desc(), audit_events.c.pk.desc()).limit(limit)
        if org_id is not None:
            query = query.where(audit_events.c.org_id == org_id)
        if since is not None:
            query = query.where(audit_events.c.at >= since)
        with self.engine.connect() as conn:
            rows = list(conn.execute(query))
        return [
            AuditEvent(
                row.at, row.action, row.face, row.org_id, row.actor_kind, row.actor, row.target,
                row._mapping["count"],  # Row.count is the tuple method
                json.loads(row.detail),
            )
            for row in reversed(rows)
        ]  # fmt: skip


def _append_grouped(conn: Connection, appends: Sequence[Sequence[AuditEvent]]) -> list[None]:
    """Every queued append's events as one multi-row insert."""
    rows = [
        {
            "at": event.at,
            "org_id": event.org_id,
            "action": event.action,
            "face": event.face,
            "actor_kind": event.actor_kind,
            "actor": event.actor,
            "target": event.target,
            "count": event.count,
            "detail": json.dumps(event.detail, sort_keys=True),
        }
        for events in appends
        for event in events
    ]
    conn.execute(insert(audit_events), rows)
    return [None] * len(appends)
