"""The feed of content changes a token's organization sees: what ``GET /api/events`` streams.

Each change has an id that only grows, numbered per organization (so no tenant learns another's
change rate from it) and visible in the order of its ids, so a client resumes with the last id it
saw (``Last-Event-ID``) and misses nothing that committed. An id the log no longer covers
(pruned after the retention, or from another server's database) gets a ``reset``: the client
must list again, then follows from the newest id. Streams are bounded per process, per
organization and in time, since each holds a connection and polls the catalog.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from assetfiles.errors import BadInput, RateLimited
from assetfiles.model import Permission, Principal
from assetfiles.service.access import require
from assetfiles.store.changes import Change, ChangeLog

#: Changes sent per catalog read; a stream behind by more reads again at once.
PAGE = 500
LAST_EVENT_ID = "Last-Event-ID"
#: Prune the log at most this often (seconds), when a stream opens.
PRUNE_EVERY = 3600.0


@dataclass(frozen=True)
class StreamStart:
    after: int  # send changes with ids above this
    reset: bool  # the client's id is not covered: it must list again


def parse_last_event_id(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    # isdigit() alone accepts "²" and other Unicode digits that int() refuses
    if len(value) > 19 or not (value.isascii() and value.isdigit()):
        raise BadInput(
            f"{LAST_EVENT_ID}: expected the id of an event this feed sent (digits), got {value[:40]!r}",
            field=LAST_EVENT_ID,
        )
    return int(value)


class ChangeFeed:
    def __init__(
        self,
        log: ChangeLog,
        *,
        max_streams: int,
        max_streams_per_org: int,
        retention_days: int,
    ) -> None:
        self.log = log
        self.max_streams = max_streams
        self.max_streams_per_org = max_streams_per_org
        self.retention_days = retention_days
        self.open: Counter[str] = Counter()
        self._pruned_at = 0.0

    def open_stream(self, principal: Principal) -> Callable[[], None]:
        """Take one of the process's and the organization's streams (RateLimited when none is free);
        returns what gives it back."""
        require(principal, Permission.READ)
        if sum(self.open.values()) >= self.max_streams:
            raise RateLimited(f"this server holds {self.max_streams} event streams already", retry_after=30)
        if self.open[principal.org_id] >= self.max_streams_per_org:
            raise RateLimited(
                f"the organization holds {self.max_streams_per_org} event streams already on this server",
                retry_after=30,
            )
        org_id = principal.org_id
        self.open[org_id] += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.open[org_id] -= 1
                if not self.open[org_id]:
                    del self.open[org_id]

        return release

    async def start(self, principal: Principal, last_event_id: int | None) -> StreamStart:
        await self._maybe_prune()
        low, high = await self.log.bounds(principal.org_id)
        if last_event_id is None:
            return StreamStart(high, reset=False)
        oldest_kept = low if low is not None else high + 1
        if last_event_id > high or last_event_id < oldest_kept - 1:
            return StreamStart(high, reset=True)
        return StreamStart(last_event_id, reset=False)

    async def read(self, principal: Principal, after: int) -> list[Change]:
        return await self.log.after(principal.org_id, after, PAGE)

    async def _maybe_prune(self) -> None:
        if time.monotonic() - self._pruned_at < PRUNE_EVERY:
            return
        self._pruned_at = time.monotonic()
        await self.log.prune(int((time.time() - self.retention_days * 86400) * 1000))
