"""Slots: bookable windows with capacity, cut-off and fee; reservations hold one briefly."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from doorstep.db.base import Base
from doorstep.db.types import JSONType, UTCDateTime


class SlotCalendar(Base):
    """Which days and windows a depot delivers, with weekday/weekend rules and cut-offs."""

    __tablename__ = "slot_calendars"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    depot_id: Mapped[str] = mapped_column(ForeignKey("depots.id"))
    # [{"days": ["mon",...], "start": "14:00", "end": "16:00", "capacity": 40,
    #   "fee_cents": 0, "cutoff_minutes": 120, "service_level": "scheduled"}]
    rules: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    closed_dates: Mapped[list[str]] = mapped_column(JSONType, default=list)
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


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
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
