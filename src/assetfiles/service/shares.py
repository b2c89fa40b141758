"""Each organization's share of the threads that run catalog calls, so one cannot starve another.

Catalog calls run on anyio's worker threads (40 per process). One request can start hundreds of
them at once (GraphQL aliases resolve concurrently), and an organization's requests together
could take every thread for as long as their queries run, leaving other organizations' requests
queued behind them. Once a request's caller is known, its calls run in its organization's lane:
at most ``catalog_threads_per_org`` at a time, so others always find threads free; a request
that wants more waits in its own lane.
"""

from __future__ import annotations

import anyio

from assetfiles.store.threads import LANE


class ThreadShares:
    def __init__(self, threads_per_org: int) -> None:
        self.threads_per_org = threads_per_org
        self._lanes: dict[str, anyio.CapacityLimiter] = {}

    def enter(self, org_id: str) -> None:
        """Run the current request's later catalog calls in ``org_id``'s lane."""
        lane = self._lanes.get(org_id)
        if lane is None:
            if len(self._lanes) >= 1024:  # forget idle lanes: as many as organizations calling
                self._lanes = {org: held for org, held in self._lanes.items() if held.borrowed_tokens}
            lane = self._lanes[org_id] = anyio.CapacityLimiter(self.threads_per_org)
        LANE.set(lane)
