"""Event ids numbered per organization, in commit order

Revision ID: 0010
Revises: 0009

The feed's ids were a global sequence: on PostgreSQL a transaction holding a lower id could
commit after a stream had read past it (a change skipped), and a tenant could follow every
other tenant's change rate through its own ids. Ids now come from a per-organization counter
row. Existing rows keep their id (``seq = pk``) and every organization's counter starts at the
highest id handed out so far, so a ``Last-Event-ID`` a client already holds stays valid.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "change_counters",
        sa.Column("org_id", sa.String(length=128), nullable=False),
        sa.Column("last", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("org_id", name=op.f("pk_change_counters")),
    )
    op.add_column("content_changes", sa.Column("seq", sa.BigInteger(), nullable=True))
    op.execute("UPDATE content_changes SET seq = pk")
    op.execute(
        "INSERT INTO change_counters (org_id, last) "
        "SELECT id, (SELECT COALESCE(MAX(pk), 0) FROM content_changes) FROM organizations"
    )
    with op.batch_alter_table("content_changes") as batch:
        batch.alter_column("seq", existing_type=sa.BigInteger(), nullable=False)
        batch.drop_index("ix_content_changes_org_pk")
        batch.create_index("ix_content_changes_org_seq", ["org_id", "seq"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("content_changes") as batch:
        batch.drop_index("ix_content_changes_org_seq")
        batch.create_index("ix_content_changes_org_pk", ["org_id", "pk"])
        batch.drop_column("seq")
    op.drop_table("change_counters")
