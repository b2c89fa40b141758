"""Retention: delete what an organization's policies say has been kept long enough.

A policy covers an organization's contents, narrowed by asset (its own contents and those of
the devices that feed it), media type (exact or ``type/*``) and name prefix, and says either
"delete after N days" (since the content was last modified) or "keep the newest N per target"
(per asset, or per device for device uploads), or both. The plan is computed from the catalog
alone, so ``--dry-run`` lists exactly what a real run at the same moment deletes; a real run
deletes through the content service (bytes released, usage uncharged, each deletion audited as
``content.deleted`` by ``retention`` through the ``retention`` face).

Inside ``assetfiles serve`` it runs on a schedule; with several processes, a lease in the
catalog makes one of them do it at a time.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from assetfiles.errors import BadInput, NotFound
from assetfiles.model import (
    OBJECT_ID,
    CreatorKind,
    Permission,
    Principal,
    check_identifier,
    media_type_matches,
    now_ms,
)
from assetfiles.service.audit import CURRENT_FACE
from assetfiles.service.contents import ContentService
from assetfiles.service.ports import Assets
from assetfiles.service.quotas import MEDIA_TYPE_PATTERN
from assetfiles.store.retention import RetentionPolicy, RetentionStore

logger = logging.getLogger("assetfiles.retention")
DAY_MS = 86_400_000
#: Bounds a policy's numbers must keep (the catalog stores them as 32-bit integers): over 2,700
#: years, and more contents than any target holds.
MAX_DAYS = 1_000_000
MAX_KEEP = 2**31 - 1
LEASE = "retention"


@dataclass(frozen=True)
class Doomed:
    """A content a run deletes, and why."""

    org_id: str
    content_id: str
    name: str
    reason: str
    updated_at: int  # as planned: a content modified since is kept


def check_policy(policy: RetentionPolicy, *, field: str = "retention") -> RetentionPolicy:
    if policy.delete_after_days is None and policy.keep_per_target is None:
        raise BadInput(f"{field}: give delete_after_days, keep_per_asset or both", field=field)
    for name, value, most in (
        ("delete_after_days", policy.delete_after_days, MAX_DAYS),
        ("keep_per_asset", policy.keep_per_target, MAX_KEEP),
    ):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= most
        ):
            raise BadInput(
                f"{field}.{name}: a whole number from 0 to {most}, got {value!r}"[:200],
                field=f"{field}.{name}",
            )
    if policy.asset_id is not None:
        check_identifier(policy.asset_id, field=f"{field}.asset", pattern=OBJECT_ID)
    if policy.content_type is not None and not MEDIA_TYPE_PATTERN.fullmatch(policy.content_type.lower()):
        raise BadInput(f"{field}.content_type: {policy.content_type!r} is not a media type or 'type/*'",
                       field=f"{field}.content_type")  # fmt: skip
    return policy


class Retention:
    def __init__(self, store: RetentionStore, assets: Assets, contents: ContentService) -> None:
        self.store = store
        self.assets = assets
        self.contents = contents

    async def set_policies(self, org_id: str, policies: Sequence[RetentionPolicy]) -> bool:
        for index, policy in enumerate(policies):
            check_policy(policy, field=f"retention[{index}]")
        return await self.store.replace_policies(org_id, policies)

    async def policies(self, org_id: str | None = None) -> list[RetentionPolicy]:
        return await self.store.policies(org_id)

    async def plan(self, now: int, org_id: str | None = None) -> list[Doomed]:
        doomed: dict[str, Doomed] = {}
        for policy in await self.store.policies(org_id):
            for item in await self._plan_one(policy, now):
                doomed.setdefault(item.content_id, item)
        return sorted(doomed.values(), key=lambda d: (d.org_id, d.name, d.content_id))

    async def _plan_one(self, policy: RetentionPolicy, now: int) -> list[Doomed]:
        targets: list[tuple[str, str]] | None = None
        if policy.asset_id is not None:
            devices = await self.assets.feeding_devices(policy.org_id, policy.asset_id)
            targets = [
                ("asset", policy.asset_id),
                *(("device", str(device)) for device in sorted(devices, key=str)),
            ]
        found = await self.store.candidates(policy.org_id, targets, policy.name_prefix)
        if policy.content_type is not None:
            found = [c for c in found if media_type_matches(c.content_type, [policy.content_type])]
        doomed = []
        if policy.delete_after_days is not None:
            cutoff = now - policy.delete_after_days * DAY_MS
            reason = f"not modified for {policy.delete_after_days} days"
            doomed += [
                Doomed(policy.org_id, c.content_id, c.name, reason, c.updated_at)
                for c in found
                if c.updated_at < cutoff
            ]
        if policy.keep_per_target is not None:
            seen: dict[tuple[str, str], int] = {}
            reason = f"beyond the newest {policy.keep_per_target} of its {{}}"
            for candidate in found:  # newest first within each target
                target = (candidate.target_type, candidate.target_id)
                seen[target] = seen.get(target, 0) + 1
                if seen[target] > policy.keep_per_target:
                    where = f"{candidate.target_type} {candidate.target_id}"
                    doomed.append(
                        Doomed(
                            policy.org_id,
                            candidate.content_id,
                            candidate.name,
                            reason.format(where),
                            candidate.updated_at,
                        )
                    )
        return doomed

    async def apply(self, now: int, org_id: str | None = None) -> list[Doomed]:
        """Delete what :meth:`plan` lists (as of ``now``); returns what was deleted."""
        deleted = []
        token = CURRENT_FACE.set("retention")
        try:
            for item in await self.plan(now, org_id):
                actor = Principal(item.org_id, "retention", frozenset({Permission.WRITE}), CreatorKind.TOKEN)
                try:
                    await self.contents.delete(actor, item.content_id, unmodified_since=item.updated_at)
                except NotFound:
                    continue  # deleted, or modified (tags, bytes) since the plan, by somebody else
                deleted.append(item)
        finally:
            CURRENT_FACE.reset(token)
        return deleted

    async def run_every(self, seconds: float) -> None:
        """Apply all organizations' policies every ``seconds``, when this process holds the lease."""
        holder = f"{socket.gethostname()}:{os.getpid()}"
        while True:
            await asyncio.sleep(seconds)
            try:
                now = now_ms()
                if await self.store.try_lease(LEASE, holder, now + int(seconds * 1000 * 2), now):
                    deleted = await self.apply(now)
                    if deleted:
                        logger.info("retention deleted %d contents", len(deleted))
            except Exception:
                logger.exception("retention run failed; it will run again")
