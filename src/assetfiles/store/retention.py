"""Retention policies, the contents they may cover, and leases for jobs one process runs at a time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, and_, delete, insert, or_, select, update

from assetfiles.store.schema import content_associations, contents, leases, retention_policies
from assetfiles.store.sql import escape_like, upsert
from assetfiles.store.threads import in_thread


@dataclass(frozen=True)
class RetentionPolicy:
    org_id: str
    asset_id: str | None = None
    content_type: str | None = None
    name_prefix: str | None = None
    delete_after_days: int | None = None
    keep_per_target: int | None = None


@dataclass(frozen=True)
class Candidate:
    """A content under one association target, as a retention policy sees it."""

    content_id: str
    name: str
    content_type: str
    updated_at: int
    target_type: str
    target_id: str


class RetentionStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @in_thread
    def policies(self, org_id: str | None = None) -> list[RetentionPolicy]:
        query = select(retention_policies).order_by(retention_policies.c.org_id, retention_policies.c.pk)
        if org_id is not None:
            query = query.where(retention_policies.c.org_id == org_id)
        with self.engine.connect() as conn:
            return [
                RetentionPolicy(
                    row.org_id, row.asset_id, row.content_type, row.name_prefix,
                    row.delete_after_days, row.keep_per_target,
                )
                for row in conn.execute(query)
            ]  # fmt: skip

    @in_thread
    def replace_policies(self, org_id: str, policies: Sequence[RetentionPolicy]) -> bool:
        """Make these the organization's policies; True when that changed anything."""
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(retention_policies)
                .where(retention_policies.c.org_id == org_id)
                .order_by(retention_policies.c.pk)
            )
            current = [
                (r.asset_id, r.content_type, r.name_prefix, r.delete_after_days, r.keep_per_target)
                for r in rows
            ]
            wanted = [
                (p.asset_id, p.content_type, p.name_prefix, p.delete_after_days, p.keep_per_target)
                for p in policies
            ]
            if current == wanted:
                return False
            conn.execute(delete(retention_policies).where(retention_policies.c.org_id == org_id))
            if wanted:
                keys = ("asset_id", "content_type", "name_prefix", "delete_after_days", "keep_per_target")
                conn.execute(
                    insert(retention_policies),
                    [{"org_id": org_id, **dict(zip(keys, row, strict=True))} for row in wanted],
                )
            return True

    @in_thread
    def candidates(
        self, org_id: str, targets: Sequence[tuple[str, str]] | None, name_prefix: str | None
    ) -> list[Candidate]:
        """Contents of the organization under ``targets`` (all when None), newest first per target."""
        links = content_associations.c
        query = (
            select(
                contents.c.id, links.name, links.content_type, links.updated_at, links.type, links.target_id
            )
            .join(contents, contents.c.pk == links.content_pk)
            .where(links.org_id == org_id)
            .order_by(links.type, links.target_id, links.updated_at.desc(), contents.c.pk.desc())
        )
        if targets is not None:
            if not targets:
                return []
            query = query.where(
                or_(*(and_(links.type == kind, links.target_id == target) for kind, target in targets))
            )
        if name_prefix:
            query = query.where(links.name.like(escape_like(name_prefix) + "%", escape="\\"))
        with self.engine.connect() as conn:
            return [Candidate(*row) for row in conn.execute(query)]

    @in_thread
    def try_lease(self, name: str, holder: str, until: int, now: int) -> bool:
        """Take (or renew) the lease ``name`` until ``until`` unless another holder has it now."""
        with self.engine.begin() as conn:
            conn.execute(
                upsert(conn, leases).values(name=name, holder=holder, expires_at=0).on_conflict_do_nothing()
            )
            taken = conn.execute(
                update(leases)
                .where(leases.c.name == name, or_(leases.c.holder == holder, leases.c.expires_at <= now))
                .values(holder=holder, expires_at=until)
            )
            return bool(taken.rowcount)
