"""A TCP proxy on loopback that cuts uploads: each connection is closed after the client sent a set
number of bytes (headers included), and the client's bytes may be slowed to a rate.

It sits below HTTP on purpose: a request body cut mid-way is what a cellular link or a proxy
timeout does to an upload, and no HTTP-level fault injector can produce it. It counts every byte
the clients sent, which is how a test measures what an upload sent again after a cut.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass, field

from assetfiles.cli.background import free_port


@dataclass
class CutProxy:
    upstream_port: int
    #: client bytes each connection may send before it is cut (None: never cut)
    cut_after: int | None = None
    #: how many cuts in all (then every connection passes whole); raise it to cut again
    cuts: int = 1_000_000
    #: client bytes per second, per connection (None: full speed)
    rate: float | None = None
    port: int = field(default_factory=free_port)
    sent: int = 0
    cut: int = 0

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> CutProxy:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._shutdown)
        self._thread.join(10)

    def _shutdown(self) -> None:
        for task in asyncio.all_tasks(self._loop):
            task.cancel()
        self._loop.call_soon(self._loop.stop)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", self.port))
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            pending = asyncio.all_tasks(self._loop)
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        budget = self.cut_after

        async def client_to_server() -> None:
            nonlocal budget
            while data := await reader.read(65536):
                if budget is not None and len(data) >= budget and self.cut < self.cuts:
                    self.cut += 1
                    upstream_writer.write(data[:budget])
                    self.sent += budget
                    await upstream_writer.drain()
                    raise ConnectionAbortedError  # the cut
                if budget is not None:
                    budget -= len(data)
                self.sent += len(data)
                upstream_writer.write(data)
                await upstream_writer.drain()
                if self.rate:
                    await asyncio.sleep(len(data) / self.rate)

        async def server_to_client() -> None:
            while data := await upstream_reader.read(65536):
                writer.write(data)
                await writer.drain()

        tasks = [asyncio.ensure_future(client_to_server()), asyncio.ensure_future(server_to_client())]
        with contextlib.suppress(Exception):
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        for stream in (writer, upstream_writer):
            with contextlib.suppress(Exception):
                stream.transport.abort()
