"""Batching lookups made in the same event-loop tick into one catalog call.

A client resolving 50 download URLs in one GraphQL request (50 aliases of ``content``) would
otherwise cost 50 worker-thread hops and 100 queries; graphql-core starts every root field before
awaiting any, so all 50 loads land in one batch: one hop, two queries.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class BatchLoader(Generic[K, V]):
    """``load(key)`` now; the keys of one tick are fetched together by ``fetch(keys)`` soon after."""

    def __init__(self, fetch: Callable[[Sequence[K]], Awaitable[dict[K, V]]]) -> None:
        self._fetch = fetch
        self._pending: dict[K, asyncio.Future[V | None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def load(self, key: K) -> asyncio.Future[V | None]:
        if key in self._pending:
            return self._pending[key]
        loop = asyncio.get_running_loop()
        future: asyncio.Future[V | None] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._start)
        self._pending[key] = future
        return future

    def _start(self) -> None:
        batch, self._pending = self._pending, {}
        task = asyncio.ensure_future(self._dispatch(batch))
        self._tasks.add(task)  # keep a reference until it is done
        task.add_done_callback(self._tasks.discard)

    async def _dispatch(self, batch: dict[K, asyncio.Future[V | None]]) -> None:
        try:
            found = await self._fetch(list(batch))
        except Exception as exc:
            for future in batch.values():
                if not future.done():
                    future.set_exception(exc)
            return
        for key, future in batch.items():
            if not future.done():
                future.set_result(found.get(key))
