"""EnOS token requests remember the token they obtained, so a repeated one gets it again

Revision ID: 0004
Revises: 0003

The table holds requests for the timestamp window only (minutes), so it is recreated empty
rather than converted: a request seen just before the upgrade can at worst be answered again.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index(op.f("ix_enos_token_requests_expires_at"), table_name="enos_token_requests")
    op.drop_table("enos_token_requests")
    op.create_table(
        "enos_token_requests",
        sa.Column("operation", sa.String(length=16), nullable=False),
        sa.Column("encryption", sa.String(length=64), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("access_token_hash", sa.String(length=64), nullable=True),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("operation", "encryption", name=op.f("pk_enos_token_requests")),
    )
    op.create_index(op.f("ix_enos_token_requests_expires_at"), "enos_token_requests", ["expires_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_enos_token_requests_expires_at"), table_name="enos_token_requests")
    op.drop_table("enos_token_requests")
    op.create_table(
        "enos_token_requests",
        sa.Column("encryption", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("encryption", name=op.f("pk_enos_token_requests")),
    )
    op.create_index(op.f("ix_enos_token_requests_expires_at"), "enos_token_requests", ["expires_at"])
