"""The content change log: appended in the catalog's own transactions, read back as a feed.

Rows are ordered by ``pk``, which is the event id clients resume from (``Last-Event-ID``).
:func:`record` is called inside the transaction that creates, changes or deletes the content;
:class:`ChangeLog` reads a page after an id and prunes rows older than the retention.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, delete, func, insert, select
from sqlalchemy.engine import Connection

from assetfiles.model import Association
from assetfiles.store.schema import content_associations, content_changes
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
    caller's transaction."""
    rows = [
        {
            "org_id": org_id,
            "at": at,
            "change": change,
            "content_id": content_id,
            "associations": json.dumps(
                [[link.type, link.id] for link in sorted(links, key=lambda link: (link.type, link.id))]
            ),
        }
        for org_id, content_id, links, at in items
    ]
    if rows:
        conn.execute(insert(content_changes), rows)


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
                .where(content_changes.c.org_id == org_id, content_changes.c.pk > after_id)
                .order_by(content_changes.c.pk)
                .limit(limit)
            ).all()
        return [
            Change(row.pk, row.org_id, row.at, row.change, row.content_id, _links(row.associations))
            for row in rows
        ]

    @in_thread
    def bounds(self) -> tuple[int, int]:
        """The lowest and highest ids the log still holds, over every organization ((0, 0): none)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(func.min(content_changes.c.pk), func.max(content_changes.c.pk))).one()
        return int(row[0] or 0), int(row[1] or 0)

    @in_thread
    def prune(self, before_ms: int) -> int:
        """Drop changes older than ``before_ms``, always keeping the newest (it anchors the ids)."""
        with self.engine.begin() as conn:
            newest = conn.scalar(select(func.max(content_changes.c.pk))) or 0
            result = conn.execute(
                delete(content_changes).where(content_changes.c.at < before_ms, content_changes.c.pk < newest)
            )
            return int(result.rowcount or 0)


def _links(document: str) -> tuple[Association, ...]:
    return tuple(Association(kind, target) for kind, target in json.loads(document))
