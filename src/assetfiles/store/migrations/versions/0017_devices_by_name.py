"""Devices found by product and id

Revision ID: 0017
Revises: 0016

Every device request looks its credential up by (product, device id) across organizations; the
primary key starts with the organization, so that lookup scanned every device of the catalog. An
index on (product_id, id) makes it a point read at any fleet size.
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_devices_product_device", "devices", ["product_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_devices_product_device", table_name="devices")
