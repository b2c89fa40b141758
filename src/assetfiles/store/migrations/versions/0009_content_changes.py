"""The content change log behind GET /api/events

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "content_changes",
        sa.Column(
            "pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("org_id", sa.String(length=128), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("change", sa.String(length=16), nullable=False),
        sa.Column("content_id", sa.String(length=64), nullable=False),
        sa.Column("associations", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_content_changes")),
    )
    op.create_index("ix_content_changes_org_pk", "content_changes", ["org_id", "pk"])
    op.create_index("ix_content_changes_at", "content_changes", ["at"])


def downgrade() -> None:
    op.drop_index("ix_content_changes_at", table_name="content_changes")
    op.drop_index("ix_content_changes_org_pk", table_name="content_changes")
    op.drop_table("content_changes")
