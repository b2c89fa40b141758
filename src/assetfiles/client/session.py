"""The HTTP session every client request goes through."""

from __future__ import annotations

import aiohttp

from assetfiles.client.responses import CHUNK


def client_session(concurrency: int) -> aiohttp.ClientSession:
    """One connection pool for every request of a run; no total timeout (files may be huge).

    API answers are decompressed (a compressing proxy may gzip them); byte downloads ask for
    ``identity`` and turn decompression off per request (client/transfer.py).
    """
    connector = aiohttp.TCPConnector(limit=concurrency + 4, ttl_dns_cache=300)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=120)
    return aiohttp.ClientSession(connector=connector, timeout=timeout, read_bufsize=CHUNK)
