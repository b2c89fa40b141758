"""An emulated wide-area link as a TCP proxy: every connection gets its own rate cap and the
round-trip delay, in both directions.

    python -m bench.wanproxy --port P --upstream 127.0.0.1:8000 [--rate-mbit 128] [--rtt-ms 40]

Each direction of each connection forwards bytes half the RTT after they arrived, paced to the
rate (a per-connection token bucket), with a bounded buffer (a few bandwidth-delay products)
so a fast sender is held back as a real link would hold it. This stands in for netem, which
needs kernel modules this machine does not have (``tc qdisc add ... netem`` reports the kind
unknown). It runs in its own process so its CPU is not the measured client's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

PIECE = 16 * 1024


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float, rate: float) -> None:
    loop = asyncio.get_running_loop()
    # about four bandwidth-delay products in flight, at least 1 MiB
    queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue(
        maxsize=max(64, int(rate * delay * 8 / PIECE))
    )

    async def receive() -> None:
        try:
            while data := await reader.read(PIECE):
                await queue.put((loop.time() + delay, data))
        except (ConnectionError, OSError):
            pass
        finally:
            await queue.put(None)

    receiving = asyncio.create_task(receive())
    free_at = 0.0
    try:
        while (item := await queue.get()) is not None:
            due, data = item
            start = max(due, free_at)
            now = loop.time()
            if start > now:
                await asyncio.sleep(start - now)
            writer.write(data)
            await writer.drain()
            free_at = max(start, now) + len(data) / rate
        with contextlib.suppress(OSError):
            writer.write_eof()
    except (ConnectionError, OSError):
        pass
    finally:
        receiving.cancel()


async def serve(port: int, upstream: tuple[str, int], rate: float, delay: float) -> None:
    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(*upstream)
        except OSError:
            client_writer.close()
            return
        await asyncio.sleep(2 * delay)  # the TCP handshake's round trip
        try:
            await asyncio.gather(
                pipe(client_reader, server_writer, delay, rate),
                pipe(server_reader, client_writer, delay, rate),
            )
        finally:
            for writer in (client_writer, server_writer):
                writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="host:port")
    parser.add_argument("--rate-mbit", type=float, default=128.0, help="per connection and direction")
    parser.add_argument("--rtt-ms", type=float, default=40.0)
    args = parser.parse_args()
    host, _, port = args.upstream.rpartition(":")
    asyncio.run(serve(args.port, (host, int(port)), args.rate_mbit * 1e6 / 8, args.rtt_ms / 2000))


if __name__ == "__main__":
    main()
