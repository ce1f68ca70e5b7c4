"""orders without coordinates: location state, reason, precision, source and candidates

Revision ID: 0004
Revises: 0002
Create Date: 2026-12-06 04:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.alter_column("lat", existing_type=sa.Float(), nullable=True)
        batch_op.alter_column("lon", existing_type=sa.Float(), nullable=True)
        batch_op.add_column(
            sa.Column(
                "location_state", sa.String(length=16), server_default="located", nullable=False
            )
        )
        batch_op.add_column(sa.Column("location_reason", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("location_note", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("location_precision", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("location_source", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column(
                "location_candidates",
                sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
                nullable=True,
            )
        )
        batch_op.create_index(
            "ix_orders_merchant_location", ["merchant_id", "location_state"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_merchant_location")
        batch_op.drop_column("location_candidates")
        batch_op.drop_column("location_source")
        batch_op.drop_column("location_precision")
        batch_op.drop_column("location_note")
        batch_op.drop_column("location_reason")
        batch_op.drop_column("location_state")
        batch_op.alter_column("lon", existing_type=sa.Float(), nullable=False)
        batch_op.alter_column("lat", existing_type=sa.Float(), nullable=False)
