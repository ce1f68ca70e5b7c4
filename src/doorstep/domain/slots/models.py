"""Delivery options: service zones, slot calendars and their per-window counters,
reservations that hold a window while the customer pays, pickup points, and what a recipient
chose for an order (redirect, hold)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from doorstep.db.base import Base
from doorstep.db.types import JSONType, UTCDateTime


class ServiceZone(Base):
    """Where a depot delivers: a GeoJSON Polygon or MultiPolygon (lon/lat, RFC 7946)."""

    __tablename__ = "service_zones"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    depot_id: Mapped[str] = mapped_column(ForeignKey("depots.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    geometry: Mapped[dict[str, Any]] = mapped_column(JSONType)
    # Bounding box [min_lon, min_lat, max_lon, max_lat]: a cheap first test before shapely's.
    bbox: Mapped[list[float]] = mapped_column(JSONType, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SlotCalendar(Base):
    """Which windows a zone (or a whole depot) offers per weekday, with capacity, fee, cut-offs,
    lead time and blackout dates. Clock times are the merchant's local time."""

    __tablename__ = "slot_calendars"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    depot_id: Mapped[str] = mapped_column(ForeignKey("depots.id"))
    # None: the calendar serves every zone of its depot.
    zone_id: Mapped[str | None] = mapped_column(ForeignKey("service_zones.id"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    # The windows: [{"days": ["mon", ..., "sun"], "start": "14:00", "end": "16:00",
    #   "capacity": 40, "vehicle_minutes": null, "fee_cents": 0}]
    rules: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    # Blackout dates, "YYYY-MM-DD" in the merchant's timezone.
    closed_dates: Mapped[list[str]] = mapped_column(JSONType, default=list)
    # A window today can be booked until this local time (None: no same-day windows).
    same_day_cutoff: Mapped[str | None] = mapped_column(String(5))
    # A window tomorrow can be booked until this local time today (None: no limit).
    next_day_cutoff: Mapped[str | None] = mapped_column(String(5))
    # A window must start at least this long after the booking.
    lead_time_minutes: Mapped[int] = mapped_column(Integer, default=60)
    # How many days ahead windows are offered.
    horizon_days: Mapped[int] = mapped_column(Integer, default=14)
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SlotCounter(Base):
    """How much of one calendar window is taken (held and confirmed reservations). Incremented
    by one conditional UPDATE, so concurrent reservations never pass the capacity."""

    __tablename__ = "slot_counters"
    __table_args__ = (UniqueConstraint("calendar_id", "window_start"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    calendar_id: Mapped[str] = mapped_column(ForeignKey("slot_calendars.id"))
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    window_end: Mapped[datetime] = mapped_column(UTCDateTime)
    taken: Mapped[int] = mapped_column(Integer, default=0)
    minutes_taken: Mapped[int] = mapped_column(Integer, default=0)


class Reservation(Base):
    __tablename__ = "reservations"
    __table_args__ = (Index("ix_reservations_slot", "calendar_id", "window_start", "status"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    calendar_id: Mapped[str] = mapped_column(ForeignKey("slot_calendars.id"))
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    window_end: Mapped[datetime] = mapped_column(UTCDateTime)
    order_id: Mapped[str | None] = mapped_column(ForeignKey("orders.id"))
    status: Mapped[str] = mapped_column(String(16))  # held|confirmed|released|expired
    fee_cents: Mapped[int] = mapped_column(Integer, default=0)
    service_level: Mapped[str] = mapped_column(String(16), default="scheduled")
    # Vehicle-minutes counted against the window (service time and detour).
    minutes: Mapped[int] = mapped_column(Integer, default=0)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PickupPoint(Base):
    """A shop or a locker a recipient can have the parcel redirected to."""

    __tablename__ = "pickup_points"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # shop|locker
    address_line1: Mapped[str] = mapped_column(String(200))
    city: Mapped[str] = mapped_column(String(100))
    postal_code: Mapped[str | None] = mapped_column(String(20))
    country: Mapped[str] = mapped_column(String(2))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    opening_hours: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DeliveryChoice(Base):
    """What the recipient chose for one order: a redirect and/or a hold. One row per order."""

    __tablename__ = "delivery_choices"

    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    # neighbour|safe_place|pickup_point, or None for the door.
    redirect_kind: Mapped[str | None] = mapped_column(String(16))
    # {"name": ..., "house_number": ...} | {"place": ..., "photo_consent": true}
    # | {"pickup_point_id": ..., "name": ...}
    redirect_detail: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    pickup_point_id: Mapped[str | None] = mapped_column(ForeignKey("pickup_points.id"))
    held_until: Mapped[date | None] = mapped_column(Date)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
