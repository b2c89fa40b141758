"""Alembic environment: runs the catalog migrations on any backend."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, text

from assetfiles.store.schema import metadata

config = context.config
url = config.get_main_option("sqlalchemy.url") or ""

if context.is_offline_mode():
    context.configure(url=url, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = create_engine(url)
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            # Several server processes may start at once on one database: one migrates, the
            # others wait here and then find nothing to do.
            connection.execute(text("SELECT pg_advisory_lock(727174)"))
            connection.commit()
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
