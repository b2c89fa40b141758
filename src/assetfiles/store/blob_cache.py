"""The bytes of small local blobs, kept in memory for downloads.

Blobs are named by their sha256 and never change, so a copy kept here can only be stale in one
way: the blob was removed. A download asks the catalog first (every time, uncached), and the
catalog no longer names a content whose blob was removed, so a removed blob's bytes are never
served from here. What this saves is the open, read and close of a file per small download:
each gives the GIL up, and on the server's event loop every such hand-over costs more than the
read itself (bench/README.md, "16 KiB signed downloads").

Bounded by bytes (``small_blob_cache_bytes`` per worker process), least recently used out; 0
turns it off.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

#: Blobs larger than this are never read into memory for a download.
SMALL_BLOB = 64 * 1024


class SmallBlobCache:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.held = 0
        self._blobs: OrderedDict[str, bytes] = OrderedDict()

    def read(self, sha256: str, path: str | Path, length: int) -> bytes | None:
        """The blob's ``length`` bytes, from memory or from ``path`` (then kept); None when it is
        larger than :data:`SMALL_BLOB` or the file does not hold that many bytes. Raises
        FileNotFoundError when it is missing."""
        if length > SMALL_BLOB:
            return None
        found = self._blobs.get(sha256)
        if found is not None:
            self._blobs.move_to_end(sha256)
            return found
        with open(path, "rb") as blob:
            data = blob.read(length + 1)
        if len(data) != length:
            return None
        self._keep(sha256, data)
        return data

    def _keep(self, sha256: str, data: bytes) -> None:
        if len(data) > self.max_bytes:
            return
        self._blobs[sha256] = data
        self.held += len(data)
        while self.held > self.max_bytes:
            _, dropped = self._blobs.popitem(last=False)
            self.held -= len(dropped)
