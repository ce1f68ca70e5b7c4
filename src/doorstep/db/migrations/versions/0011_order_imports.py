"""Orders remember the CSV import that created them (``orders.import_id``), so an import can
be previewed, listed and undone as a whole.

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-06 05:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("import_id", sa.String(length=32), nullable=True))
        batch_op.create_index("ix_orders_merchant_import", ["merchant_id", "import_id"])


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_merchant_import")
        batch_op.drop_column("import_id")
