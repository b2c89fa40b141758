"""Device messages remembered per session, so that a re-sent message is not stored twice

Revision ID: 0013
Revises: 0012

EnOS's device SDK never retries, but an application that re-publishes the same request object
after a lost answer sends the same message id and the same files again: the first answer is
kept (per session, gone with it) and given again.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "device_messages",
        sa.Column("session_digest", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_digest"],
            ["device_sessions.digest"],
            name=op.f("fk_device_messages_session_digest_device_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_digest", "message_id", name=op.f("pk_device_messages")),
    )


def downgrade() -> None:
    op.drop_table("device_messages")
