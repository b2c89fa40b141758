"""Quotas per organization, and the usage they are checked against

Revision ID: 0007
Revises: 0006

``org_usage`` is kept in the same transactions that add and remove content rows, so checking a
quota is one conditional update, not a sum over the organization's contents; it is backfilled
here from the contents that exist.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "org_usage",
        sa.Column("org_id", sa.String(length=128), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("contents", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("org_id", name=op.f("pk_org_usage")),
    )
    op.execute(
        "INSERT INTO org_usage (org_id, bytes, contents) "
        "SELECT org_id, SUM(length), COUNT(*) FROM contents GROUP BY org_id"
    )
    op.create_table(
        "org_quotas",
        sa.Column("org_id", sa.String(length=128), nullable=False),
        sa.Column("max_total_bytes", sa.BigInteger(), nullable=True),
        sa.Column("max_file_bytes", sa.BigInteger(), nullable=True),
        sa.Column("content_types", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_org_quotas_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", name=op.f("pk_org_quotas")),
    )


def downgrade() -> None:
    op.drop_table("org_quotas")
    op.drop_table("org_usage")
