"""A reverse proxy on loopback that breaks transfers on purpose: resets, truncations, 500, 429, 403.

It runs an aiohttp server on its own event loop in a thread, forwards every request to the real
assetfiles server (keeping the Host header, so the URLs the server signs point back at the
proxy), and applies a fault chosen per request by a test-supplied schedule. It counts the body
bytes it passed for each path, which is how tests measure what a client fetched again.
"""

from __future__ import annotations

import asyncio
import gzip
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

import aiohttp
from aiohttp import web

from assetfiles.cli.background import free_port

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "proxy-authorization"}


class Fault(StrEnum):
    PASS = "pass"
    RESET = "reset"  # half the body, then the connection is aborted
    TRUNCATE = "truncate"  # half the body, then a clean close before Content-Length is reached
    ERROR_500 = "500"
    BUSY_429 = "429"  # with Retry-After: 1
    EXPIRED_403 = "403"  # as a signed URL past its expiry answers


#: (method, path, how many times this path was requested before) -> the fault to apply.
Schedule = Callable[[str, str, int], Fault]


def never(_method: str, _path: str, _count: int) -> Fault:
    return Fault.PASS


@dataclass
class FaultProxy:
    upstream: str
    schedule: Schedule = never
    rate_bytes_per_second: float | None = None  # throttle transfer bodies (None: full speed)
    compress: bool = False  # gzip every answer whose request accepts gzip, as a compressing proxy does
    ignore_range: bool = False  # drop Range and If-Range, as a server without range support would
    compressed: Counter[str] = field(default_factory=Counter)
    port: int = field(default_factory=free_port)
    requests: Counter[str] = field(default_factory=Counter)
    body_bytes: Counter[str] = field(default_factory=Counter)
    faults: list[tuple[str, Fault]] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fault proxy did not start")
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(10)

    def transfer_bytes(self) -> int:
        return sum(count for path, count in self.body_bytes.items() if path.startswith("/transfer/"))

    def _run(self, ready: threading.Event) -> None:
        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self._serve(ready))

    async def _serve(self, ready: threading.Event) -> None:
        self._stopping = asyncio.Event()
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.port)
        timeout = aiohttp.ClientTimeout(total=None, sock_read=60)
        self._session = aiohttp.ClientSession(timeout=timeout, auto_decompress=False)
        await site.start()
        ready.set()
        await self._stopping.wait()
        await runner.cleanup()
        await self._session.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        count = self.requests[path]
        self.requests[path] += 1
        fault = self.schedule(request.method, path, count)
        if fault is not Fault.PASS:
            self.faults.append((path, fault))
        if fault is Fault.ERROR_500:
            return web.json_response({"error": "injected"}, status=500)
        if fault is Fault.BUSY_429:
            return web.json_response({"error": "slow down"}, status=429, headers={"Retry-After": "1"})
        if fault is Fault.EXPIRED_403:
            return web.json_response({"error": {"code": "FORBIDDEN", "message": "URL expired"}}, status=403)
        dropped = HOP_BY_HOP | ({"range", "if-range"} if self.ignore_range else set())
        headers = {k: v for k, v in request.headers.items() if k.lower() not in dropped}
        body = await request.read()
        async with self._session.request(
            request.method, self.upstream + request.path_qs, headers=headers, data=body or None
        ) as upstream:
            if self.compress and "gzip" in request.headers.get("Accept-Encoding", ""):
                return await self._compressed(request, upstream)
            response = web.StreamResponse(status=upstream.status)
            for name, value in upstream.headers.items():
                if name.lower() not in HOP_BY_HOP:
                    response.headers[name] = value
            await response.prepare(request)
            length = int(upstream.headers.get("Content-Length", "0") or 0)
            cut = length // 2 if fault in (Fault.RESET, Fault.TRUNCATE) else None
            sent = 0
            async for chunk in upstream.content.iter_chunked(256 * 1024):
                if cut is not None and sent + len(chunk) >= cut:
                    await response.write(chunk[: cut - sent])
                    self.body_bytes[path] += cut - sent
                    await asyncio.sleep(0.05)
                    assert request.transport is not None
                    if fault is Fault.RESET:
                        request.transport.abort()
                    else:
                        request.transport.close()
                    return response
                await response.write(chunk)
                sent += len(chunk)
                self.body_bytes[path] += len(chunk)
                if self.rate_bytes_per_second and path.startswith("/transfer/"):
                    await asyncio.sleep(len(chunk) / self.rate_bytes_per_second)
            await response.write_eof()
            return response

    async def _compressed(self, request: web.Request, upstream: aiohttp.ClientResponse) -> web.Response:
        body = gzip.compress(await upstream.read())
        self.compressed[request.path] += 1
        headers = {
            name: value
            for name, value in upstream.headers.items()
            if name.lower() not in HOP_BY_HOP | {"content-length", "content-encoding"}
        }
        return web.Response(
            status=upstream.status, body=body, headers={**headers, "Content-Encoding": "gzip"}
        )
