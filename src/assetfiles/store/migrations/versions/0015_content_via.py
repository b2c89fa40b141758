"""How each content's bytes arrived

Revision ID: 0015
Revises: 0014

``contents.via`` names the upload path (GraphQL's upload URL, our device upload, the EnOS device
or integration API, a fixture), so that people can see which protocol put a file there. Contents
stored before keep null: it was not recorded.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contents") as batch:
        batch.add_column(sa.Column("via", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("contents") as batch:
        batch.drop_column("via")
