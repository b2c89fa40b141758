"""Blocking store methods made awaitable, each in the calling organization's share of the threads."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Concatenate, ParamSpec, TypeVar

import anyio
import anyio.to_thread

P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S")

#: The share of anyio's worker threads the current request's store calls may hold at once (its
#: organization's, see service/shares.py); None outside a request (the CLI, start-up).
LANE: ContextVar[anyio.CapacityLimiter | None] = ContextVar("store_lane", default=None)


def in_thread(
    method: Callable[Concatenate[S, P], R],
) -> Callable[Concatenate[S, P], Awaitable[R]]:
    """Make a blocking store method awaitable by running it, whole, in anyio's worker threads,
    within the current lane when there is one."""

    async def run(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return await in_lane(functools.partial(method, self, *args, **kwargs))

    functools.update_wrapper(run, method)
    return run


async def in_lane(call: Callable[[], R]) -> R:
    """Run a blocking call in anyio's worker threads, within the current lane when there is one."""
    lane = LANE.get()
    if lane is None:
        return await anyio.to_thread.run_sync(call)
    async with lane:
        return await anyio.to_thread.run_sync(call)
