"""Local file names for remote content: safe on every common file system, and never colliding.

A content name is whatever a user or device sent (``../x``, ``/etc/x``, ``CON``, 255 multibyte
characters, two files called ``report.pdf``). Each name becomes a single path component that
cannot climb out of its folder, is portable to Windows and macOS, fits in 255 bytes, and is
unique case-insensitively within its folder. Collisions are settled by content id, so the same
listing always gives the same paths.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from pathlib import PurePosixPath

from assetfiles.client.remote import Origin, RemoteFile

MAX_COMPONENT_BYTES = 255
#: Characters Windows refuses in names, path separators, control characters, and the invisible
#: ones that make a name look like another: bidirectional overrides and isolates (``exe.pdf``
#: shown for ``fdp.exe``), zero-width characters and the byte-order mark.
UNSAFE = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]')
RESERVED = {
    "CON",
    "PRN",
    "AUX",
    "NUL",
    *(f"COM{i}" for i in range(1, 10)),
    *(f"LPT{i}" for i in range(1, 10)),
}
USER_FOLDER = "user"
DEVICES_FOLDER = "devices"


def safe_component(name: str, *, max_bytes: int = MAX_COMPONENT_BYTES) -> str:
    """One portable path component for ``name``."""
    cleaned = UNSAFE.sub("_", unicodedata.normalize("NFC", name))
    cleaned = cleaned.strip().rstrip(". ")  # Windows drops trailing dots and spaces
    if not cleaned or set(cleaned) <= {"."}:
        cleaned = "_"
    stem, dot, suffix = cleaned.partition(".")
    if stem.upper() in RESERVED:  # CON, con.txt, LPT1.tar.gz are device names on Windows
        cleaned = f"{stem}_{dot}{suffix}"
    return _truncate(cleaned, max_bytes)


def _truncate(name: str, max_bytes: int) -> str:
    """Shorten to ``max_bytes`` of UTF-8, keeping a short extension and whole characters."""
    if len(name.encode()) <= max_bytes:
        return name
    path = PurePosixPath(name)
    suffix = path.suffix if len(path.suffix.encode()) <= 16 else ""
    stem = name[: len(name) - len(suffix)] if suffix else name
    room = max_bytes - len(suffix.encode())
    encoded = stem.encode()[:room]
    return encoded.decode(errors="ignore").rstrip(". ") + suffix


def _with_tag(name: str, label: str) -> str:
    """``report.pdf`` -> ``report (3f2a9c1e).pdf``, within the byte budget."""
    tag = f" ({label})"
    path = PurePosixPath(name)
    suffix = path.suffix if len(path.suffix.encode()) <= 16 else ""
    stem = name[: len(name) - len(suffix)] if suffix else name
    stem = _truncate(stem, MAX_COMPONENT_BYTES - len(tag.encode()) - len(suffix.encode()))
    return f"{stem}{tag}{suffix}"


def folder_of(remote: RemoteFile) -> str:
    """``user`` for users' and API content, ``devices/<product>.<device>`` for a device's."""
    if remote.origin is Origin.USER:
        return USER_FOLDER
    return f"{DEVICES_FOLDER}/{safe_component(remote.device or 'unknown-device')}"


def assign_paths(files: Iterable[RemoteFile]) -> dict[str, str]:
    """Relative POSIX path (``user/manual.pdf``) for each content id.

    In each folder, names equal after folding case go to the lowest content id unchanged; the
    others get their id in the name.
    """
    by_key: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for remote in files:
        folder = folder_of(remote)
        name = safe_component(remote.name)
        by_key[(folder, name.casefold())].append((remote.id, name))
    paths: dict[str, str] = {}
    taken: set[tuple[str, str]] = set(by_key)
    for (folder, _), claimants in sorted(by_key.items()):
        claimants.sort()
        first_id, first_name = claimants[0]
        paths[first_id] = f"{folder}/{first_name}"
        for content_id, name in claimants[1:]:
            label = safe_component(content_id)[:12]
            renamed = _with_tag(name, label)
            attempt = 1
            while (folder, renamed.casefold()) in taken:  # another content may be called that
                attempt += 1
                renamed = _with_tag(name, f"{label}-{attempt}")
            taken.add((folder, renamed.casefold()))
            paths[content_id] = f"{folder}/{renamed}"
    return paths
