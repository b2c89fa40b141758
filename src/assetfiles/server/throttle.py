"""Rate limits and per-address bounds (the ``limits`` library's moving windows, counted in this
process or, with ``rate_limit_storage``, in a Redis all processes share: server/rate_windows.py).

- Failed sign-ins (any face: API token, EnOS application or token, device secret) are counted
  per client address. Every credential check runs inside :meth:`Throttle.sign_in`, which holds
  the count: checks in flight from one address never outnumber the failures it has left, so a
  burst of bad credentials sent at once gets no more checks than the limit (the rest wait for
  those to end, then get 429). Past the limit, credential checks from that address are answered
  429 until the window moves on, before the credential is checked (no scrypt or database work).
- A shared address (a NAT, an office) is not locked out as a whole by one guesser: requests that
  carry no credential (signed URLs, health, the console's pages) are never refused for it, and a
  credential that signed in from that address within the window keeps working. IPv6 addresses
  are counted per /64, the block one subscriber gets.
- Each credential (token, application, device) may make ``rate_limit_per_credential`` requests.
- Requests in flight per client address are capped (``max_requests_per_address``): a client
  holding hundreds of connections open with unsent bodies cannot take every slot.

The failed sign-in and per-credential windows are shared across nodes when the storage is; the
in-flight cap is a bound on this process's own connections and stays per process, as does the
memory of credentials that signed in recently. Behind a reverse proxy, list it in
``trusted_proxies`` so that the client's address, not the proxy's, is what is counted.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import ipaddress
import secrets
import time
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from limits import RateLimitItem, parse
from starlette.requests import Request

from assetfiles.config import Settings
from assetfiles.errors import RateLimited, classify, refuses_credential
from assetfiles.server.rate_windows import RateWindows

#: Credentials remembered as having signed in recently, per process (least recently used out).
TRUSTED_CREDENTIALS = 10_000


def client_address(request: Request) -> str:
    return request.client.host if request.client else "-"


@functools.lru_cache(maxsize=16384)
def address_key(address: str) -> str:
    """What per-address bounds count by: the address, or its /64 for IPv6. Kept for the addresses
    seen most recently: parsing one costs more than the rest of a small download's bookkeeping."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


class Throttle:
    def __init__(self, settings: Settings) -> None:
        self._windows = RateWindows(settings.rate_limit_storage)
        self._failures: RateLimitItem | None = (
            parse(settings.rate_limit_auth_failures) if settings.rate_limit_auth_failures else None
        )
        self._per_credential: RateLimitItem | None = (
            parse(settings.rate_limit_per_credential) if settings.rate_limit_per_credential else None
        )
        self.max_in_flight = settings.max_requests_per_address
        self.in_flight: Counter[str] = Counter()
        #: credential checks in flight per address key, and a wake-up for those waiting on them
        self._checking: Counter[str] = Counter()
        self._check_ended = asyncio.Event()
        self._trusted: OrderedDict[bytes, float] = OrderedDict()
        self._digest_key = secrets.token_bytes(32)

    async def _retry_after(self, item: RateLimitItem, *keys: str) -> int:
        reset, _remaining = await self._windows.stats(item, *keys)
        return max(1, int(reset - time.time()) + 1)

    @asynccontextmanager
    async def sign_in(self, address: str, credential: str | None) -> AsyncIterator[None]:
        """Around one credential check from ``address``: refused (429) when the address has no
        failures left, queued while its checks in flight would outnumber them; a 401 raised
        inside counts as a failure. ``credential`` is what the caller presented (kept only as a
        keyed digest): one that signed in from this address within the window is not held back."""
        if self._failures is None:
            yield
            return
        key = address_key(address)
        trusted = self._fingerprint(key, credential) if credential else None
        if trusted is None or not self._is_trusted(trusted):
            await self._wait_for_a_check(key)
        self._checking[key] += 1
        try:
            yield
        except Exception as exc:
            error = classify(exc)
            if error is not None and refuses_credential(error):
                await self._windows.hit(self._failures, "auth-failures", key)
            raise
        else:
            if trusted is not None:
                self._trust(trusted)
        finally:
            self._checking[key] -= 1
            if not self._checking[key]:
                del self._checking[key]
            self._check_ended.set()
            self._check_ended = asyncio.Event()

    async def _wait_for_a_check(self, key: str) -> None:
        assert self._failures is not None
        while True:
            stats = await self._windows.stats(self._failures, "auth-failures", key)
            if stats.remaining <= 0:
                raise RateLimited(
                    f"too many failed sign-ins from this address (limit {self._failures}); retry later",
                    retry_after=max(1, int(stats.reset_time - time.time()) + 1),
                )
            remaining = stats.remaining
            if self._checking[key] < remaining:
                return
            await self._check_ended.wait()

    def _fingerprint(self, key: str, credential: str) -> bytes:
        return hashlib.blake2b(f"{key}\n{credential}".encode(), key=self._digest_key).digest()

    def _is_trusted(self, fingerprint: bytes) -> bool:
        until = self._trusted.get(fingerprint)
        if until is None or until < time.monotonic():
            return False
        self._trusted.move_to_end(fingerprint)
        return True

    def _trust(self, fingerprint: bytes) -> None:
        assert self._failures is not None
        self._trusted[fingerprint] = time.monotonic() + self._failures.get_expiry()
        self._trusted.move_to_end(fingerprint)
        while len(self._trusted) > TRUSTED_CREDENTIALS:
            self._trusted.popitem(last=False)

    async def credential_used(self, credential: str) -> None:
        """One request by a credential (its kind and name, never its secret)."""
        if self._per_credential is None:
            return
        if not await self._windows.hit(self._per_credential, "credential", credential):
            raise RateLimited(
                f"too many requests with this credential (limit {self._per_credential}); retry later",
                retry_after=await self._retry_after(self._per_credential, "credential", credential),
            )

    @contextmanager
    def slot(self, address: str) -> Iterator[None]:
        """One request in flight from ``address``, refused past ``max_requests_per_address``."""
        address = address_key(address)
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
