"""Quotas and usage: what each organization may store and what it stores now.

Usage is charged by :func:`charge` inside the transaction that inserts, replaces or deletes a
content (see :mod:`assetfiles.store.contents`), so it cannot drift from the rows it counts and
concurrent uploads cannot overshoot a quota together.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import and_, bindparam, delete, insert, select, update
from sqlalchemy.engine import Connection, Engine

from assetfiles.model import Quota
from assetfiles.store.point_reads import PointRead
from assetfiles.store.schema import org_quotas, org_usage, organizations
from assetfiles.store.sql import upsert
from assetfiles.store.threads import in_lane, in_thread


class OverQuota(Exception):
    """Inserting would take an organization past its stored-bytes quota; nothing was written."""


def charge(conn: Connection, org_id: str, size: int, count: int, limit: int | None) -> None:
    """Add to the organization's usage; with ``limit``, refuse (OverQuota) past it."""
    conn.execute(upsert(conn, org_usage).values(org_id=org_id, bytes=0, contents=0).on_conflict_do_nothing())
    condition = org_usage.c.org_id == org_id
    if limit is not None and size > 0:
        condition = and_(condition, org_usage.c.bytes + size <= limit)
    charged = conn.execute(
        update(org_usage)
        .where(condition)
        .values(bytes=org_usage.c.bytes + size, contents=org_usage.c.contents + count)
    )
    if charged.rowcount == 0:
        raise OverQuota(f"organization '{org_id}' would hold more than {limit} bytes")


class QuotaStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def get_quota(self, org_id: str) -> Quota | None:
        """Every EnOS multipart upload asks before spooling: a point read (store/point_reads.py)."""
        row = await _QUOTA.first(self.engine, org_id=org_id)
        return None if row is None else _quota(*row)

    @in_thread
    def set_quota(self, org_id: str, quota: Quota | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(org_quotas).where(org_quotas.c.org_id == org_id))
            if quota is not None:
                types = json.dumps(list(quota.content_types)) if quota.content_types is not None else None
                conn.execute(
                    insert(org_quotas).values(
                        org_id=org_id,
                        max_total_bytes=quota.max_total_bytes,
                        max_file_bytes=quota.max_file_bytes,
                        content_types=types,
                    )
                )

    async def usage(self, org_id: str | None = None) -> dict[str, tuple[int, int, Quota | None]]:
        """org -> (bytes, contents, quota): one organization's (every upload asks: a point read,
        store/point_reads.py), or every organization's, in one query."""
        if org_id is None:
            rows = await in_lane(self._every_usage)
        else:
            rows = await _ORG_USAGE.rows(self.engine, org_id=org_id)
        return {
            org: (stored or 0, count or 0, _quota(*quota) if quota_org else None)
            for org, stored, count, quota_org, *quota in rows
        }

    def _every_usage(self) -> list[tuple[Any, ...]]:
        with self.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(_USAGE.order_by(organizations.c.id))]


#: (org id, bytes, contents, the quota's org id or null, and its three columns) per organization
_USAGE = (
    select(
        organizations.c.id,
        org_usage.c.bytes,
        org_usage.c.contents,
        org_quotas.c.org_id.label("quota_org"),
        org_quotas.c.max_total_bytes,
        org_quotas.c.max_file_bytes,
        org_quotas.c.content_types,
    )
    .outerjoin(org_usage, org_usage.c.org_id == organizations.c.id)
    .outerjoin(org_quotas, org_quotas.c.org_id == organizations.c.id)
)
_ORG_USAGE = PointRead(_USAGE.where(organizations.c.id == bindparam("org_id")))
_QUOTA = PointRead(
    select(org_quotas.c.max_total_bytes, org_quotas.c.max_file_bytes, org_quotas.c.content_types).where(
        org_quotas.c.org_id == bindparam("org_id")
    )
)


def _quota(max_total_bytes: int | None, max_file_bytes: int | None, content_types: str | None) -> Quota:
    """A quota from the org_quotas columns."""
    types = tuple(json.loads(content_types)) if content_types is not None else None
    return Quota(max_total_bytes, max_file_bytes, types)
