"""Orders, their parcels and the delivery event log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from doorstep.db.base import Base
from doorstep.db.types import JSONType, UTCDateTime


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("merchant_id", "reference"),
        Index("ix_orders_merchant_status", "merchant_id", "status"),
        Index("ix_orders_merchant_window", "merchant_id", "window_start"),
        Index("ix_orders_merchant_location", "merchant_id", "location_state"),
        # The list endpoint's keyset pagination walks this index.
        Index("ix_orders_merchant_created", "merchant_id", "created_at", "id"),
        # Undoing a CSV import finds its orders through this index.
        Index("ix_orders_merchant_import", "merchant_id", "import_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    reference: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(String(64))
    service_level: Mapped[str] = mapped_column(String(16))

    recipient_name: Mapped[str] = mapped_column(String(200))
    recipient_phone: Mapped[str | None] = mapped_column(String(20))
    recipient_email: Mapped[str | None] = mapped_column(String(254))
    recipient_locale: Mapped[str | None] = mapped_column(String(16))

    address_line1: Mapped[str] = mapped_column(String(200))
    address_line2: Mapped[str | None] = mapped_column(String(200))
    city: Mapped[str] = mapped_column(String(100))
    postal_code: Mapped[str | None] = mapped_column(String(20))
    country: Mapped[str] = mapped_column(String(2))
    # None while the address has no place (location_state "needs_location").
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    # "located", or "needs_location" (not found or ambiguous: left out of planning until a
    # dispatcher sets coordinates); see domain/orders/location.py.
    location_state: Mapped[str] = mapped_column(
        String(16), default="located", server_default="located"
    )
    location_reason: Mapped[str | None] = mapped_column(String(32))
    location_note: Mapped[str | None] = mapped_column(String(300))
    # point|house|interpolated|street|postcode|city, and who placed it (merchant, dispatcher,
    # osm_extract, nominatim, ...).
    location_precision: Mapped[str | None] = mapped_column(String(16))
    location_source: Mapped[str | None] = mapped_column(String(32))
    # Places the address may be (ambiguous, or coarse guesses): [{lat, lon, precision, label,
    # source}].
    location_candidates: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)

    window_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    window_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # How many times the window moved: the iCalendar SEQUENCE of the delivery event.
    window_sequence: Mapped[int] = mapped_column(Integer, default=0)

    instructions: Mapped[str | None] = mapped_column(Text)
    service_time_s: Mapped[int | None] = mapped_column(Integer)
    required_skills: Mapped[list[str]] = mapped_column(JSONType, default=list)
    parcel_count: Mapped[int] = mapped_column(Integer, default=1)
    weight_kg: Mapped[float] = mapped_column(Float, default=0.0)

    # The tracking link is a capability: only a SHA-256 of the token is stored.
    tracking_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    tracking_nonce: Mapped[str] = mapped_column(String(32))

    # Proof of delivery by PIN: the recipient tells the driver this code (shown on the tracking
    # page); kept readable because the recipient must be shown it.
    requires_pin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    delivery_pin: Mapped[str | None] = mapped_column(String(8))

    attempts: Mapped[int] = mapped_column(Integer, default=0)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The CSV import that created the order (``imp_...``), None for orders created one by one.
    import_id: Mapped[str | None] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    parcels: Mapped[list[Parcel]] = relationship(
        back_populates="order", order_by="Parcel.position", cascade="all, delete-orphan"
    )


class Parcel(Base):
    __tablename__ = "parcels"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    position: Mapped[int] = mapped_column(Integer)
    barcode: Mapped[str | None] = mapped_column(String(64))
    weight_kg: Mapped[float | None] = mapped_column(Float)
    length_cm: Mapped[float | None] = mapped_column(Float)
    width_cm: Mapped[float | None] = mapped_column(Float)
    height_cm: Mapped[float | None] = mapped_column(Float)
    fragile: Mapped[bool] = mapped_column(Boolean, default=False)
    description: Mapped[str | None] = mapped_column(String(200))

    order: Mapped[Order] = relationship(back_populates="parcels")


class DeliveryEvent(Base):
    """One row per thing that happened. Append-only: rows are never updated or deleted.

    ``type`` is a ``<resource>.<event>`` name (``order.created``, ``delivery.out_for_delivery``,
    ``route.stop_moved``); ``status``/``reason`` are the delivery status after the event, when
    the event concerns an order. Timeline, notifications and analytics all read this table.
    """

    __tablename__ = "delivery_events"
    __table_args__ = (
        Index("ix_delivery_events_order_seq", "order_id", "seq"),
        Index("ix_delivery_events_merchant_seq", "merchant_id", "seq"),
        Index("ix_delivery_events_route_seq", "route_id", "seq"),
        # Analytics: a period's attempts (delivered, failed) without reading the whole history.
        Index("ix_delivery_events_merchant_type_occurred", "merchant_id", "type", "occurred_at"),
    )

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    id: Mapped[str] = mapped_column(String(32), unique=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    order_id: Mapped[str | None] = mapped_column(ForeignKey("orders.id"))
    route_id: Mapped[str | None] = mapped_column(String(32))
    type: Mapped[str] = mapped_column(String(64))
    status: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(String(64))
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
