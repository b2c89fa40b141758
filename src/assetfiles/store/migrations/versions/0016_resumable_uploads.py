"""Resumable (tus) uploads in progress

Revision ID: 0016
Revises: 0015

One row per tus upload: who may continue it, the content it becomes, its declared length and
its acknowledged offset, the spool backend's state (S3 multipart parts), its expiry, and the
lease that keeps two PATCHes from interleaving.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "resumable_uploads",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("org_id", sa.String(length=128), nullable=False),
        sa.Column("owner", sa.String(length=16), nullable=False),
        sa.Column("device", sa.String(length=255), nullable=True),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("length", sa.BigInteger(), nullable=True),
        sa.Column("received", sa.BigInteger(), nullable=False),
        sa.Column("concat", sa.String(length=8), nullable=True),
        sa.Column("spool_state", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("lease", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.BigInteger(), nullable=True),
        sa.Column("content_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_resumable_uploads_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resumable_uploads")),
    )
    op.create_index("ix_resumable_uploads_org_id", "resumable_uploads", ["org_id", "device"])
    op.create_index("ix_resumable_uploads_expires_at", "resumable_uploads", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_resumable_uploads_expires_at", table_name="resumable_uploads")
    op.drop_index("ix_resumable_uploads_org_id", table_name="resumable_uploads")
    op.drop_table("resumable_uploads")
