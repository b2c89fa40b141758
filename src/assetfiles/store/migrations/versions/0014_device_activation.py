"""Murano device activation state

Revision ID: 0014
Revises: 0013

A Murano device activates once (``POST /provision/activate``) after an operator enabled it, and
receives its token; ``devices.activation`` is null (not enabled), ``enabled`` or ``activated``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("activation", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("activation")
