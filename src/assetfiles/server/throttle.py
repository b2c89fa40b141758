"""Rate limits and per-address bounds, in each worker process (the ``limits`` library's moving
windows in memory).

- Failed sign-ins (any face: API token, EnOS application or token, device secret) are counted
  per client address; past ``rate_limit_auth_failures`` every request from that address is
  answered 429 until the window moves on, before any credential is checked (so guessing costs
  no scrypt or database work either).
- Each credential (token, application, device) may make ``rate_limit_per_credential`` requests.
- Requests in flight per client address are capped (``max_requests_per_address``): a client
  holding hundreds of connections open with unsent bodies cannot take every slot.

Behind a reverse proxy every request comes from the proxy's address: raise or switch off the
per-address bounds there and let the proxy limit per client (docs/reliability.md).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.requests import Request

from assetfiles.config import Settings
from assetfiles.errors import RateLimited


def client_address(request: Request) -> str:
    return request.client.host if request.client else "-"


class Throttle:
    def __init__(self, settings: Settings) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._failures: RateLimitItem | None = (
            parse(settings.rate_limit_auth_failures) if settings.rate_limit_auth_failures else None
        )
        self._per_credential: RateLimitItem | None = (
            parse(settings.rate_limit_per_credential) if settings.rate_limit_per_credential else None
        )
        self.max_in_flight = settings.max_requests_per_address
        self.in_flight: Counter[str] = Counter()

    def _retry_after(self, item: RateLimitItem, *keys: str) -> int:
        reset, _remaining = self._limiter.get_window_stats(item, *keys)
        return max(1, int(reset - time.time()) + 1)

    def check_address(self, address: str) -> None:
        """Before anything else: refuse an address that failed to sign in too often."""
        if self._failures is None:
            return
        if not self._limiter.test(self._failures, "auth-failures", address):
            raise RateLimited(
                f"too many failed sign-ins from this address (limit {self._failures}); retry later",
                retry_after=self._retry_after(self._failures, "auth-failures", address),
            )

    def failed_sign_in(self, address: str) -> None:
        if self._failures is not None:
            self._limiter.hit(self._failures, "auth-failures", address)

    def credential_used(self, credential: str) -> None:
        """One request by a credential (its kind and name, never its secret)."""
        if self._per_credential is None:
            return
        if not self._limiter.hit(self._per_credential, "credential", credential):
            raise RateLimited(
                f"too many requests with this credential (limit {self._per_credential}); retry later",
                retry_after=self._retry_after(self._per_credential, "credential", credential),
            )

    @contextmanager
    def slot(self, address: str) -> Iterator[None]:
        """One request in flight from ``address``, refused past ``max_requests_per_address``."""
        if self.max_in_flight and self.in_flight[address] >= self.max_in_flight:
            raise RateLimited(
                f"too many requests in flight from this address (at most {self.max_in_flight})",
                retry_after=1,
            )
        self.in_flight[address] += 1
        try:
            yield
        finally:
            self.in_flight[address] -= 1
            if not self.in_flight[address]:
                del self.in_flight[address]
