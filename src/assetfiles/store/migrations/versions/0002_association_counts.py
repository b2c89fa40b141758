"""association counts: O(1) totalCount for unfiltered listings

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "association_counts",
        sa.Column("org_id", sa.String(length=128), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("target_id", sa.String(length=255), nullable=False),
        sa.Column("contents", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("org_id", "type", "target_id", name=op.f("pk_association_counts")),
    )
    op.execute(
        "INSERT INTO association_counts (org_id, type, target_id, contents) "
        "SELECT org_id, type, target_id, COUNT(*) FROM content_associations GROUP BY org_id, type, target_id"
    )


def downgrade() -> None:
    op.drop_table("association_counts")
