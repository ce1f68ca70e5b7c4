"""Everything that leaves Doorstep leaves through an outbox row written in the same
transaction as the event that caused it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from doorstep.db.base import Base
from doorstep.db.types import JSONType, UTCDateTime


class OutboxMessage(Base):
    __tablename__ = "outbox_messages"
    __table_args__ = (
        Index("ix_outbox_messages_due", "status", "next_attempt_at"),
        Index("ix_outbox_messages_order", "order_id", "trigger"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    channel: Mapped[str] = mapped_column(String(16))  # email|sms|webhook|chat
    topic: Mapped[str] = mapped_column(String(64))  # the event type that caused it
    event_id: Mapped[str | None] = mapped_column(String(32))
    order_id: Mapped[str | None] = mapped_column(ForeignKey("orders.id"))
    target: Mapped[str] = mapped_column(String(500))  # address, number or endpoint id
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(String(16))  # pending|sending|sent|failed|dead|suppressed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The recipient trigger (order_confirmed, arriving_soon, ...); None for webhooks.
    trigger: Mapped[str | None] = mapped_column(String(32))
    # A claimed message belongs to ``locked_by`` until ``locked_until``; then anyone retries it.
    locked_by: Mapped[str | None] = mapped_column(String(64))
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(100))  # whsec_..., needed to sign
    events: Mapped[list[str]] = mapped_column(JSONType, default=list)  # empty = all
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    description: Mapped[str | None] = mapped_column(String(200))
    # During a rotation the previous secret signs too, until it expires.
    previous_secret: Mapped[str | None] = mapped_column(String(100))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failure_streak: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disabled_reason: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebhookAttempt(Base):
    """One delivery attempt of one outbox message to one endpoint."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_endpoint", "endpoint_id", "attempted_at"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    endpoint_id: Mapped[str] = mapped_column(String(32))
    message_id: Mapped[str] = mapped_column(String(32))  # OutboxMessage.public_id = webhook-id
    event_type: Mapped[str] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[int] = mapped_column(Integer)
    response_excerpt: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime)


class MessageTemplate(Base):
    """A merchant's wording for one trigger, channel and language; rendered in a sandbox."""

    __tablename__ = "message_templates"
    __table_args__ = (UniqueConstraint("merchant_id", "trigger", "channel", "locale"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    trigger: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    locale: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str | None] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RecipientPreference(Base):
    """Per recipient (identified by a hash of phone or e-mail): channels and quiet hours."""

    __tablename__ = "recipient_preferences"
    __table_args__ = (UniqueConstraint("merchant_id", "recipient_key"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    recipient_key: Mapped[str] = mapped_column(String(64))
    channels: Mapped[list[str]] = mapped_column(JSONType, default=list)
    locale: Mapped[str | None] = mapped_column(String(16))
    quiet_start: Mapped[str | None] = mapped_column(String(5))  # "21:00"
    quiet_end: Mapped[str | None] = mapped_column(String(5))  # "08:00"
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
