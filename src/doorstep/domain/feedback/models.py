"""Feedback and support (built in a later step; the tables exist so the model is whole)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from doorstep.db.base import Base
from doorstep.db.types import JSONType, UTCDateTime


class Rating(Base):
    __tablename__ = "ratings"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), unique=True)
    score: Mapped[int] = mapped_column(Integer)  # 1..5 CSAT
    nps: Mapped[int | None] = mapped_column(Integer)  # 0..10
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Case(Base):
    __tablename__ = "cases"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    order_id: Mapped[str | None] = mapped_column(ForeignKey("orders.id"))
    kind: Mapped[str] = mapped_column(String(32))  # complaint|claim|bad_rating|late
    status: Mapped[str] = mapped_column(String(16))  # open|pending|resolved
    subject: Mapped[str] = mapped_column(String(300))
    assignee_user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    sla_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Attachment(Base):
    """A photo or signature (proof of delivery, failed attempt, claim): type and size checked,
    re-encoded without EXIF, the cleaned bytes kept in ``content`` (deferred: loaded only when
    served)."""

    __tablename__ = "attachments"
    __table_args__ = (Index("ix_attachments_order_kind", "order_id", "kind"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    order_id: Mapped[str | None] = mapped_column(ForeignKey("orders.id"))
    case_id: Mapped[str | None] = mapped_column(ForeignKey("cases.id"))
    stop_id: Mapped[str | None] = mapped_column(ForeignKey("stops.id"))
    kind: Mapped[str] = mapped_column(String(16))  # pod|signature|attempt|claim
    content_type: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    meta: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    content: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
