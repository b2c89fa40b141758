"""One download run at a time per folder.

Cron runs that overlap (a slow night, a big asset) would otherwise fetch the same files twice
into the same partial files and race on the manifests. The lock is ``flock`` on
``DIR/.assetfiles.lock``: the kernel drops it when the process dies, even on SIGKILL, so a
crashed run never blocks the next one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks; runs are not serialized
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".assetfiles.lock"


class FolderBusy(Exception):
    """Another run holds the folder."""


@contextmanager
def exclusive(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / LOCK_NAME).open("a") as handle:
        if fcntl is not None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise FolderBusy(
                    f"another assetfiles run is using {directory} (it holds {LOCK_NAME})"
                ) from None
        yield
