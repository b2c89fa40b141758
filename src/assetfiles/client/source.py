"""The one interface a sync reads from: list an asset's files, resolve where to GET their bytes.

:class:`~assetfiles.client.exosense.ExoSenseSource` (the ExoSense GraphQL API, assetfiles' or
the platform's) and :class:`~assetfiles.client.enos.EnosSource` (EnOS files by URI) implement
it; the engine (:mod:`assetfiles.client.sync`) knows nothing else about either. Sources raise
the typed outcomes of :mod:`assetfiles.client.errors`: :class:`Fatal` stops the run, anything
else fails (or, for :class:`Gone`, skips) the one asset or file it is about.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from assetfiles.client.errors import Failed
from assetfiles.client.remote import RemoteFile, Target


@dataclass
class Listing:
    """An asset's files as the source lists them.

    ``failures``: files the source was asked for but could not describe (EnOS: a URI the
    server does not know), by id. ``devices``: the devices whose content the listing includes
    (``<product>.<device>``), so a change feed naming a device can be matched to the asset.
    """

    files: list[RemoteFile]
    failures: dict[str, Failed] = field(default_factory=dict)
    devices: frozenset[str] = frozenset()


class Source(Protocol):
    """What a sync reads from: ExoSense (GraphQL), EnOS (files by URI), or your own."""

    async def connect(self) -> None:
        """Check the credentials and learn what the server offers; raises Fatal when refused."""

    async def asset_ids(self) -> list[str]:
        """Every asset the credentials can see (``sync --all``)."""

    async def list_files(
        self,
        asset_id: str,
        content_types: Sequence[str] = (),
        name_glob: str | None = None,
        *,
        tags: bool = True,
    ) -> Listing:
        """The asset's files; ``content_types`` and ``name_glob`` are hints the caller re-applies;
        ``tags=False``: the caller does not need the files' tags."""

    async def resolve(self, files: Sequence[RemoteFile]) -> dict[str, Target | Failed]:
        """Where to GET each file's bytes, or why not, by content id."""
