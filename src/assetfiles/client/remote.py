"""What a source says about remote files: plain types shared by the sources, the planner and the engine."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum


class Origin(StrEnum):
    """Who put a content on the asset; it decides the folder it lands in and how its URL is resolved."""

    USER = "user"  # users and the API: ``content(id)``
    DEVICE = "device"  # a device's upload: ``deviceAssetContent(input)``


@dataclass(frozen=True)
class Target:
    """Where to GET a file's bytes: a signed URL (no Authorization) or an API URL with headers."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    expires_at: float | None = None  # epoch seconds, when the source says

    def expired(self, margin: float = 5.0) -> bool:
        return self.expires_at is not None and time.time() + margin >= self.expires_at


@dataclass(frozen=True)
class RemoteFile:
    """One file of an asset as a source lists it.

    ``sha256`` is known only where the server says it (an assetfiles addition); otherwise the
    engine verifies the length and, when the response carries one, its ``Repr-Digest``.
    """

    id: str
    name: str
    origin: Origin
    length: int
    last_modified: str
    content_type: str = "application/octet-stream"
    tags: dict[str, str] = field(default_factory=dict)
    device: str | None = None  # "<product_id>.<device_id>" for device content
    sha256: str | None = None
    #: A signed download URL the listing already gave (assetfiles' listings do), and its expiry.
    target: Target | None = field(default=None, compare=False, repr=False)

    @property
    def version(self) -> str:
        """What identifies these bytes: a change of any part means the file must be fetched again."""
        return f"{self.id}|{self.last_modified}|{self.length}|{self.sha256 or ''}"
