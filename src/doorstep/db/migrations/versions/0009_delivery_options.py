"""Delivery options: service zones, slot counters, pickup points, delivery choices; slot
calendars and reservations evolved (existing rows get the defaults).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 04:25:13.213238
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pickup_points",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("merchant_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("address_line1", sa.String(length=200), nullable=False),
        sa.Column("city", sa.String(length=100), nullable=False),
        sa.Column("postal_code", sa.String(length=20), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column(
            "opening_hours",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=False,
        ),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_pickup_points_merchant_id_merchants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pickup_points")),
    )
    with op.batch_alter_table("pickup_points", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pickup_points_merchant_id"), ["merchant_id"], unique=False
        )

    op.create_table(
        "delivery_choices",
        sa.Column("order_id", sa.String(length=32), nullable=False),
        sa.Column("merchant_id", sa.String(length=32), nullable=False),
        sa.Column("redirect_kind", sa.String(length=16), nullable=True),
        sa.Column(
            "redirect_detail",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=False,
        ),
        sa.Column("pickup_point_id", sa.String(length=32), nullable=True),
        sa.Column("held_until", sa.Date(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_delivery_choices_merchant_id_merchants"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_delivery_choices_order_id_orders")
        ),
        sa.ForeignKeyConstraint(
            ["pickup_point_id"],
            ["pickup_points.id"],
            name=op.f("fk_delivery_choices_pickup_point_id_pickup_points"),
        ),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_delivery_choices")),
    )
    with op.batch_alter_table("delivery_choices", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_delivery_choices_merchant_id"), ["merchant_id"], unique=False
        )

    op.create_table(
        "service_zones",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("merchant_id", sa.String(length=32), nullable=False),
        sa.Column("depot_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False, server_default=""),
        sa.Column(
            "geometry", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("bbox", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["depot_id"], ["depots.id"], name=op.f("fk_service_zones_depot_id_depots")
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_service_zones_merchant_id_merchants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_zones")),
    )
    with op.batch_alter_table("service_zones", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_service_zones_depot_id"), ["depot_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_service_zones_merchant_id"), ["merchant_id"], unique=False
        )

    op.create_table(
        "slot_counters",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("merchant_id", sa.String(length=32), nullable=False),
        sa.Column("calendar_id", sa.String(length=32), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("taken", sa.Integer(), nullable=False),
        sa.Column("minutes_taken", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["calendar_id"],
            ["slot_calendars.id"],
            name=op.f("fk_slot_counters_calendar_id_slot_calendars"),
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_slot_counters_merchant_id_merchants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_slot_counters")),
        sa.UniqueConstraint(
            "calendar_id", "window_start", name=op.f("uq_slot_counters_calendar_id_window_start")
        ),
    )
    with op.batch_alter_table("reservations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "service_level", sa.String(length=16), nullable=False, server_default="scheduled"
            )
        )
        batch_op.add_column(sa.Column("minutes", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("lat", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("lon", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table("slot_calendars", schema=None) as batch_op:
        batch_op.add_column(sa.Column("zone_id", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column("name", sa.String(length=100), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("same_day_cutoff", sa.String(length=5), nullable=True))
        batch_op.add_column(sa.Column("next_day_cutoff", sa.String(length=5), nullable=True))
        batch_op.add_column(
            sa.Column("lead_time_minutes", sa.Integer(), nullable=False, server_default="60")
        )
        batch_op.add_column(
            sa.Column("horizon_days", sa.Integer(), nullable=False, server_default="14")
        )
        batch_op.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_slot_calendars_zone_id"), ["zone_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_slot_calendars_zone_id_service_zones"),
            "service_zones",
            ["zone_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("slot_calendars", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_slot_calendars_zone_id_service_zones"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_slot_calendars_zone_id"))
        batch_op.drop_column("updated_at")
        batch_op.drop_column("horizon_days")
        batch_op.drop_column("lead_time_minutes")
        batch_op.drop_column("next_day_cutoff")
        batch_op.drop_column("same_day_cutoff")
        batch_op.drop_column("name")
        batch_op.drop_column("zone_id")

    with op.batch_alter_table("reservations", schema=None) as batch_op:
        batch_op.drop_column("ended_at")
        batch_op.drop_column("lon")
        batch_op.drop_column("lat")
        batch_op.drop_column("minutes")
        batch_op.drop_column("service_level")

    op.drop_table("slot_counters")
    with op.batch_alter_table("service_zones", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_service_zones_merchant_id"))
        batch_op.drop_index(batch_op.f("ix_service_zones_depot_id"))

    op.drop_table("service_zones")
    with op.batch_alter_table("delivery_choices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_delivery_choices_merchant_id"))

    op.drop_table("delivery_choices")
    with op.batch_alter_table("pickup_points", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pickup_points_merchant_id"))

    op.drop_table("pickup_points")
