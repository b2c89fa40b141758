"""One download run at a time per folder, on every platform.

Cron runs that overlap (a slow night, a big asset) would otherwise fetch the same files twice
into the same partial files and race on the manifests. The lock is ``DIR/.assetfiles.lock``
held through ``filelock``: ``flock`` on POSIX, ``msvcrt.locking`` on Windows. Both are dropped
by the kernel when the process dies, even on SIGKILL, so a crashed run never blocks the next.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from assetfiles.client.errors import Fatal

LOCK_NAME = ".assetfiles.lock"


class FolderBusy(Fatal):
    """Another run holds the folder."""


@contextmanager
def exclusive(directory: Path) -> Iterator[None]:
    """Hold ``directory`` for this run; raises FolderBusy at once when another run holds it."""
    directory.mkdir(parents=True, exist_ok=True)
    lock = FileLock(directory / LOCK_NAME, timeout=0, thread_local=False)
    try:
        lock.acquire()
    except Timeout:
        raise FolderBusy(f"another assetfiles run is using {directory} (it holds {LOCK_NAME})") from None
    try:
        yield
    finally:
        lock.release()
