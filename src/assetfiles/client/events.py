"""What a sync reports as it goes; the CLI renders it as progress bars, JSON lines or nothing."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Protocol


class Kind(StrEnum):
    """What an :class:`Event` is about."""

    PLANNED = "planned"  # an asset's plan is known: files and bytes to fetch
    STARTED = "started"  # a file's transfer began
    DOWNLOADED = "downloaded"
    MOVED = "moved"  # a kept file took a new name (a collision appeared or went)
    DELETED = "deleted"  # --delete removed a file whose content is gone
    GONE = "gone"  # the content was deleted between listing and download: nothing to fetch
    FAILED = "failed"  # a file failed; ``reason`` says why
    ASSET_FAILED = "asset_failed"  # an asset could not be listed or written; ``reason`` says why
    WOULD_FETCH = "would_fetch"  # --dry-run
    WOULD_MOVE = "would_move"
    WOULD_DELETE = "would_delete"


@dataclass(frozen=True)
class Event:
    """Something that happened in a sync; ``as_json`` is what ``--json`` prints."""

    kind: Kind
    asset: str
    path: str | None = None
    content_id: str | None = None
    bytes: int | None = None
    reason: str | None = None
    files: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}


class Listener(Protocol):
    """Receives a sync's events and byte progress: progress bars, JSON lines, your own code."""

    def event(self, event: Event) -> None: ...

    def progress(self, asset: str, path: str, delta: int) -> None:
        """``delta`` bytes of ``path`` arrived (negative when a restart drops bytes)."""


@dataclass
class Report:
    """The totals of a run, and every failure with its reason."""

    assets: int = 0
    downloaded: int = 0
    received_bytes: int = 0
    unchanged: int = 0
    moved: int = 0
    deleted: int = 0
    gone: int = 0
    failures: list[Event] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def add(self, other: Report) -> None:
        """Count ``other``'s files and failures in this report too (a watch sums its rounds)."""
        for name in ("downloaded", "received_bytes", "unchanged", "moved", "deleted", "gone"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.failures += other.failures

    def as_json(self) -> dict[str, Any]:
        return {
            "assets": self.assets,
            "downloaded": self.downloaded,
            "received_bytes": self.received_bytes,
            "unchanged": self.unchanged,
            "moved": self.moved,
            "deleted": self.deleted,
            "gone": self.gone,
            "failed": len(self.failures),
        }
