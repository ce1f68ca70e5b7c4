"""Partners and hand-offs (built in a later step; the tables exist so the model is whole)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from doorstep.db.base import Base
from doorstep.db.types import JSONType, UTCDateTime


class Partner(Base):
    __tablename__ = "partners"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # GeoJSON polygon(s) the partner covers, and its price per delivery.
    coverage: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    cost_cents: Mapped[int] = mapped_column(Integer, default=0)
    api_key_prefix: Mapped[str | None] = mapped_column(String(16), unique=True)
    api_key_hash: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Handoff(Base):
    __tablename__ = "handoffs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), index=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    external_ref: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16))  # offered|accepted|rejected|done
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
