"""Device sessions, and device secrets sealed for the EnOS device login

Revision ID: 0012
Revises: 0011

The EnOS device HTTP API signs its login with sha256 over the parameters and the device secret:
only a server that can read the secret checks it, so ``devices.sealed_secret`` keeps it sealed
under the server key (as EnOS application secrets are). A login yields a session id; the
catalog keeps its keyed digest, the device, and when it expires.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("sealed_secret", sa.Text(), nullable=True))
    op.create_table(
        "device_sessions",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("org_id", sa.String(length=128), nullable=False),
        sa.Column("product_id", sa.String(length=128), nullable=False),
        sa.Column("device_id", sa.String(length=128), nullable=False),
        sa.Column("protocol", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id", "product_id", "device_id"],
            ["devices.org_id", "devices.product_id", "devices.id"],
            name=op.f("fk_device_sessions_org_id_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_device_sessions")),
    )
    op.create_index(
        "ix_device_sessions_device", "device_sessions", ["org_id", "product_id", "device_id", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_device_sessions_device", table_name="device_sessions")
    op.drop_table("device_sessions")
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("sealed_secret")
