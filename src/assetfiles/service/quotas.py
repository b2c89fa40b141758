"""Quotas per organization: total stored bytes, largest file, allowed media types.

Every upload path ends in ``UploadService.store``, which asks :meth:`Quotas.admit` first: the
media type must be allowed (TypeNotAccepted), a declared length must fit the largest-file limit
(FileTooLarge) and what is left of the total (QuotaFull). The bytes then stream under the
tighter of the upload limit and the quota's, so an oversized body is cut off while it arrives,
and the catalog charges the total in the same transaction that inserts the row, so concurrent
uploads cannot overshoot it together. A refusal stores nothing and leaves usage unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from assetfiles.errors import BadInput, FileTooLarge, QuotaFull, TypeNotAccepted
from assetfiles.model import OBJECT_ID, Quota, check_identifier
from assetfiles.service.ports import Principals, QuotaRecords

#: The largest byte count the catalog stores (a signed 64-bit integer on SQLite and PostgreSQL).
MAX_BYTES = 2**63 - 1
MEDIA_TYPE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/(\*|[a-z0-9][a-z0-9!#$&^_.+-]{0,126})$")


@dataclass(frozen=True)
class Usage:
    org_id: str
    stored_bytes: int
    contents: int
    quota: Quota | None


@dataclass(frozen=True)
class Admission:
    """What an admitted upload may still take: checked while streaming and at insert."""

    org_id: str
    quota: Quota | None
    #: the most bytes this upload may have under the quota (None: no quota limit)
    stream_limit: int | None

    def too_large(self) -> FileTooLarge | QuotaFull:
        assert self.quota is not None and self.stream_limit is not None
        if self.quota.max_file_bytes is not None and self.stream_limit == self.quota.max_file_bytes:
            return _file_too_large(self.org_id, self.quota.max_file_bytes)
        return storage_full(self.org_id, self.quota)


def _file_too_large(org_id: str, limit: int) -> FileTooLarge:
    return FileTooLarge(
        f"quota: organization '{org_id}' accepts files of at most {limit} bytes", field="length"
    )


def storage_full(org_id: str, quota: Quota) -> QuotaFull:
    return QuotaFull(
        f"quota: organization '{org_id}' may store at most {quota.max_total_bytes} bytes in all",
        field="length",
    )


def check_quota(quota: Quota) -> Quota:
    for name in ("max_total_bytes", "max_file_bytes"):
        value = getattr(quota, name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_BYTES
        ):
            raise BadInput(
                f"quota.{name}: a number of bytes from 0 to {MAX_BYTES}, got {value!r}"[:200],
                field=f"quota.{name}",
            )
    if quota.content_types is not None:
        for index, media_type in enumerate(quota.content_types):
            if not isinstance(media_type, str) or not MEDIA_TYPE_PATTERN.fullmatch(media_type.lower()):
                field = f"quota.content_types[{index}]"
                raise BadInput(f"{field}: {media_type!r} is not a media type or 'type/*'", field=field)
    return quota


class Quotas:
    def __init__(self, records: QuotaRecords, principals: Principals) -> None:
        self.records = records
        self.principals = principals

    async def get(self, org_id: str) -> Quota | None:
        return await self.records.get_quota(org_id)

    async def set(self, org_id: str, quota: Quota | None) -> None:
        check_identifier(org_id, field="org", pattern=OBJECT_ID)
        if not await self.principals.organization_exists(org_id):
            raise BadInput(f"org: organization '{org_id}' not found", field="org")
        await self.records.set_quota(org_id, check_quota(quota) if quota is not None else None)

    async def usage(self, org_id: str | None = None) -> list[Usage]:
        found = await self.records.usage(org_id)
        return [Usage(org, stored, count, quota) for org, (stored, count, quota) in found.items()]

    async def file_limit(self, org_id: str) -> int | None:
        """The largest file the organization may store, for limits applied while spooling."""
        quota = await self.records.get_quota(org_id)
        return quota.max_file_bytes if quota else None

    async def admit(self, org_id: str, content_type: str, length: int | None) -> Admission:
        """Refuse what the quota forbids already (type, a declared length); else the stream limit."""
        stored, _, quota = (await self.records.usage(org_id)).get(org_id, (0, 0, None))
        if quota is None:
            return Admission(org_id, None, None)
        if not quota.allows_type(content_type):
            allowed = ", ".join(quota.content_types or ())
            raise TypeNotAccepted(
                f"quota: organization '{org_id}' does not accept {content_type!r} (allowed: {allowed})",
                field="contentType",
            )
        limits = []
        if quota.max_file_bytes is not None:
            if length is not None and length > quota.max_file_bytes:
                raise _file_too_large(org_id, quota.max_file_bytes)
            limits.append(quota.max_file_bytes)
        if quota.max_total_bytes is not None:
            remaining = max(0, quota.max_total_bytes - stored)
            if length is not None and length > remaining:
                raise storage_full(org_id, quota)
            limits.append(remaining)
        return Admission(org_id, quota, min(limits) if limits else None)
