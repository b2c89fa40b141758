"""Device credentials keep a keyed digest beside their scrypt hash

Revision ID: 0011
Revises: 0010

Every device request ran a salted scrypt of the device secret (about 50 ms of CPU), so one
server took a few dozen device uploads a second. A secret that passed the scrypt check now has
its HMAC under the server key kept in ``secret_digest``, and later requests compare against that.
Existing devices start without one: their next successful request computes it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("secret_digest", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("secret_digest")
