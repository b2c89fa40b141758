"""Where rate-limit windows are counted: this process's memory, or a Redis that every node shares.

With several server processes (``--workers``, or nodes behind a balancer) each one counting in
its own memory lets N processes allow N times every limit. ``rate_limit_storage`` names a Redis
(``redis://``, ``rediss://``, ``redis+unix://``) where the ``limits`` library's moving windows
are kept for all of them.

A rate limit must not turn a Redis outage into an outage of the file service: when the shared
store fails or is slow (a short socket timeout), the process counts in its own memory instead,
logs it (at most once a minute), counts it as a backend error (``rate_limits``), and tries the
shared store again after a pause. The limits then hold per process until Redis is back: looser,
never absent.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from urllib.parse import urlsplit, urlunsplit

from limits import RateLimitItem
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.util import WindowStats

logger = logging.getLogger(__name__)

MEMORY = "memory://"
SHARED_SCHEMES = ("redis", "rediss", "redis+unix")
#: Redis calls are on the path of every authenticated request: a dead server must cost little.
SOCKET_TIMEOUT_SECONDS = 0.25
#: After a failure, how long to count locally before trying the shared store again.
RETRY_SHARED_AFTER_SECONDS = 5.0
_WARN_EVERY_SECONDS = 60.0
KEY_PREFIX = "assetfiles"


def check_storage_url(url: str) -> str:
    """The setting's rule: ``memory://`` or a Redis URL (its scheme named in the error)."""
    if url == MEMORY:
        return url
    scheme = urlsplit(url).scheme
    if scheme not in SHARED_SCHEMES:
        expected = f"{MEMORY} or a redis://, rediss:// or redis+unix:// URL"
        raise ValueError(f"must be {expected}, not {scheme or url!r}")
    if importlib.util.find_spec("redis") is None:
        raise ValueError("a Redis URL needs the redis package: pip install 'assetfiles[redis]'")
    return url


def without_password(url: str) -> str:
    """The URL for people to read (settings shown, log lines): any password replaced."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:********@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _shared_storage(url: str) -> Storage:
    return RedisStorage(
        f"async+{url}",
        implementation="redispy",
        key_prefix=KEY_PREFIX,
        wrap_exceptions=True,
        socket_timeout=SOCKET_TIMEOUT_SECONDS,
        socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
    )


class RateWindows:
    """Moving windows per (limit, keys): ``hit`` counts one and says whether it was allowed."""

    def __init__(self, storage_url: str = MEMORY) -> None:
        self._local = MovingWindowRateLimiter(MemoryStorage())
        self._shared = (
            None if storage_url == MEMORY else MovingWindowRateLimiter(_shared_storage(storage_url))
        )
        self._where = without_password(storage_url)
        self._shared_paused_until = 0.0
        self._last_warning = -_WARN_EVERY_SECONDS

    @property
    def shared(self) -> bool:
        return self._shared is not None

    async def hit(self, item: RateLimitItem, *keys: str) -> bool:
        limiter = self._limiter()
        if limiter is not self._local:
            try:
                return await limiter.hit(item, *keys)
            except Exception as error:  # any failure of the shared store: count here instead
                self._shared_failed(error)
        return await self._local.hit(item, *keys)

    async def stats(self, item: RateLimitItem, *keys: str) -> WindowStats:
        limiter = self._limiter()
        if limiter is not self._local:
            try:
                return await limiter.get_window_stats(item, *keys)
            except Exception as error:
                self._shared_failed(error)
        return await self._local.get_window_stats(item, *keys)

    def _limiter(self) -> MovingWindowRateLimiter:
        if self._shared is None or time.monotonic() < self._shared_paused_until:
            return self._local
        return self._shared

    def _shared_failed(self, error: Exception) -> None:
        from assetfiles.server.metrics import Metrics

        now = time.monotonic()
        self._shared_paused_until = now + RETRY_SHARED_AFTER_SECONDS
        metrics = Metrics.active()
        if metrics is not None:
            metrics.backend_errors.labels("rate_limits").inc()
        if now - self._last_warning >= _WARN_EVERY_SECONDS:
            self._last_warning = now
            logger.warning(
                "rate-limit storage %s failed (%s: %s); counting in this process for %.0f s",
                self._where, type(error).__name__, error, RETRY_SHARED_AFTER_SECONDS,
            )  # fmt: skip
