"""Bringing the catalog's schema to this version's: what ``assetfiles migrate`` and ``serve`` share
(``Services.open`` does the same in process)."""

from __future__ import annotations

from assetfiles.config import Settings
from assetfiles.store.database import create_engine, migrate, schema_revisions


def upgrade_catalog(settings: Settings) -> str | None:
    """Apply every migration the catalog lacks (blocking); returns the revision it is at."""
    migrate(settings.catalog_url)
    engine = create_engine(settings.catalog_url)
    try:
        current, _ = schema_revisions(engine)
    finally:
        engine.dispose()
    return current
