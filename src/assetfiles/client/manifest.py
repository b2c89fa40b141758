"""The record a sync keeps in each asset folder of what it downloaded, so the next run fetches only changes.

``<dir>/<asset>/.assetfiles/manifest.json`` maps content ids to the local path and the version
(lastModified, length, sha256) last written there. It is replaced atomically (temp file, fsync,
rename): a crash leaves the previous manifest, never half of one. Files the manifest does not
know are never deleted by ``--delete``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

CONTROL_DIR = ".assetfiles"
FORMAT = 1


@dataclass(frozen=True)
class Entry:
    path: str  # relative to the asset folder, POSIX separators
    name: str
    last_modified: str
    length: int
    sha256: str | None


class Manifest:
    """One asset folder's manifest: load, change in memory, save atomically."""

    def __init__(self, folder: Path, asset_id: str, entries: dict[str, Entry] | None = None) -> None:
        self.folder = folder
        self.asset_id = asset_id
        self.entries: dict[str, Entry] = entries or {}

    @property
    def path(self) -> Path:
        return self.folder / CONTROL_DIR / "manifest.json"

    @classmethod
    def load(cls, folder: Path, asset_id: str) -> Manifest:
        """The saved manifest, or an empty one; an unreadable file is set aside, not trusted."""
        manifest = cls(folder, asset_id)
        try:
            document: dict[str, Any] = json.loads(manifest.path.read_text())
            if document.get("format") != FORMAT:
                raise ValueError(f"unknown manifest format {document.get('format')!r}")
            manifest.entries = {key: Entry(**value) for key, value in document["files"].items()}
        except FileNotFoundError:
            pass
        except (ValueError, TypeError, KeyError):
            manifest.path.replace(manifest.path.with_suffix(".json.corrupt"))
        return manifest

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "format": FORMAT,
            "asset": self.asset_id,
            "files": {key: asdict(entry) for key, entry in sorted(self.entries.items())},
        }
        temporary = self.path.with_suffix(".json.tmp")
        with temporary.open("w") as handle:
            json.dump(document, handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(self.path)
