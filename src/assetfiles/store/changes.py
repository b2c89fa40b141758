"""The content change log: appended in the catalog's own transactions, read back as a feed.

Each row has an event id (``seq``) that clients resume from (``Last-Event-ID``), numbered per
organization: :func:`record` takes the ids from the organization's counter row inside the
transaction that creates, changes or deletes the content, so the row stays locked until that
transaction commits and the organization's changes become visible in the order of their ids.
A reader that has seen id N never later finds a committed change below N. :class:`ChangeLog`
reads a page after an id and prunes rows older than the retention.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.engine import Connection

from assetfiles.model import Association
from assetfiles.store.schema import change_counters, content_associations, content_changes
from assetfiles.store.sql import upsert
from assetfiles.store.threads import in_thread


@dataclass(frozen=True)
class Change:
    id: int
    org_id: str
    at: int  # epoch ms
    change: str  # created, updated, deleted
    content_id: str
    associations: tuple[Association, ...]


def record(
    conn: Connection, change: str, items: Iterable[tuple[str, str, Sequence[Association], int]]
) -> None:
    """Append one row per (org id, content id, associations, at), in one statement, in the
    caller's transaction; call it after any other row lock the transaction takes (usage)."""
    items = list(items)
    if not items:
        return
    wanted = Counter(org_id for org_id, _, _, _ in items)
    next_id = {org_id: _advance(conn, org_id, count) - count + 1 for org_id, count in sorted(wanted.items())}
    rows = []
    for org_id, content_id, links, at in items:
        rows.append(
            {
                "org_id": org_id,
                "seq": next_id[org_id],
                "at": at,
                "change": change,
                "content_id": content_id,
                "associations": json.dumps(
                    [[link.type, link.id] for link in sorted(links, key=lambda link: (link.type, link.id))]
                ),
            }
        )
        next_id[org_id] += 1
    conn.execute(insert(content_changes), rows)


def _advance(conn: Connection, org_id: str, count: int) -> int:
    """Take ``count`` ids from the organization's counter; returns the last one taken. The row
    stays locked until the caller's transaction ends."""
    conn.execute(upsert(conn, change_counters).values(org_id=org_id, last=0).on_conflict_do_nothing())
    last = conn.execute(
        update(change_counters)
        .where(change_counters.c.org_id == org_id)
        .values(last=change_counters.c.last + count)
        .returning(change_counters.c.last)
    ).scalar_one()
    return int(last)


def links_of(conn: Connection, content_pk: int) -> list[Association]:
    rows = conn.execute(
        select(content_associations.c.type, content_associations.c.target_id).where(
            content_associations.c.content_pk == content_pk
        )
    )
    return [Association(row.type, row.target_id) for row in rows]


class ChangeLog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @in_thread
    def after(self, org_id: str, after_id: int, limit: int) -> list[Change]:
        """The organization's changes with ids above ``after_id``, oldest first, at most ``limit``."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(content_changes)
                .where(content_changes.c.org_id == org_id, content_changes.c.seq > after_id)
                .order_by(content_changes.c.seq)
                .limit(limit)
            ).all()
        return [
            Change(row.seq, row.org_id, row.at, row.change, row.content_id, _links(row.associations))
            for row in rows
        ]

    @in_thread
    def bounds(self, org_id: str) -> tuple[int | None, int]:
        """The lowest id the organization's log still holds (None: it holds none) and the last id
        it handed out (0: none yet)."""
        with self.engine.connect() as conn:
            low = conn.scalar(
                select(func.min(content_changes.c.seq)).where(content_changes.c.org_id == org_id)
            )
            high = conn.scalar(select(change_counters.c.last).where(change_counters.c.org_id == org_id))
        return (int(low) if low is not None else None), int(high or 0)

    @in_thread
    def prune(self, before_ms: int) -> int:
        """Drop changes older than ``before_ms`` (the counters, not the rows, anchor the ids)."""
        with self.engine.begin() as conn:
            result = conn.execute(delete(content_changes).where(content_changes.c.at < before_ms))
            return int(result.rowcount or 0)


def _links(document: str) -> tuple[Association, ...]:
    return tuple(Association(kind, target) for kind, target in json.loads(document))
