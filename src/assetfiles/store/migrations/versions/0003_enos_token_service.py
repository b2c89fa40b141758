"""EnOS applications, access tokens and seen token requests

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "enos_applications",
        sa.Column("app_key", sa.String(length=128), nullable=False),
        sa.Column("org_id", sa.String(length=128), nullable=False),
        sa.Column("sealed_secret", sa.Text(), nullable=False),
        sa.Column("policies", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organizations.id"],
            name=op.f("fk_enos_applications_org_id_organizations"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("app_key", name=op.f("pk_enos_applications")),
    )  # fmt: skip
    op.create_table(
        "enos_access_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("app_key", sa.String(length=128), nullable=False),
        sa.Column("nonce", sa.String(length=32), nullable=False),
        sa.Column("issued_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_key"], ["enos_applications.app_key"],
            name=op.f("fk_enos_access_tokens_app_key_enos_applications"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_enos_access_tokens")),
    )  # fmt: skip
    op.create_index(
        "ix_enos_access_tokens_app_key_expires_at", "enos_access_tokens", ["app_key", "expires_at"]
    )
    op.create_table(
        "enos_token_requests",
        sa.Column("encryption", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("encryption", name=op.f("pk_enos_token_requests")),
    )
    op.create_index(op.f("ix_enos_token_requests_expires_at"), "enos_token_requests", ["expires_at"])


def downgrade() -> None:
    op.drop_table("enos_token_requests")
    op.drop_index("ix_enos_access_tokens_app_key_expires_at", table_name="enos_access_tokens")
    op.drop_table("enos_access_tokens")
    op.drop_table("enos_applications")
