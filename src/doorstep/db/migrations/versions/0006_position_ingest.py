"""position ingest: current position per driver, indexes for tracks and pruning

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 04:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "current_positions",
        sa.Column("driver_id", sa.String(length=32), nullable=False),
        sa.Column("merchant_id", sa.String(length=32), nullable=False),
        sa.Column("route_id", sa.String(length=32), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("speed_mps", sa.Float(), nullable=True),
        sa.Column("heading_deg", sa.Float(), nullable=True),
        sa.Column("accuracy_m", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["driver_id"],
            ["drivers.id"],
            name=op.f("fk_current_positions_driver_id_drivers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_current_positions_merchant_id_merchants"),
        ),
        sa.ForeignKeyConstraint(
            ["route_id"],
            ["routes.id"],
            name=op.f("fk_current_positions_route_id_routes"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("driver_id", name=op.f("pk_current_positions")),
    )
    with op.batch_alter_table("current_positions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_current_positions_merchant_route", ["merchant_id", "route_id"], unique=False
        )
    with op.batch_alter_table("positions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_positions_route_recorded", ["route_id", "recorded_at"], unique=False
        )
        batch_op.create_index("ix_positions_recorded", ["recorded_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("positions", schema=None) as batch_op:
        batch_op.drop_index("ix_positions_recorded")
        batch_op.drop_index("ix_positions_route_recorded")
    with op.batch_alter_table("current_positions", schema=None) as batch_op:
        batch_op.drop_index("ix_current_positions_merchant_route")
    op.drop_table("current_positions")
