"""API shapes for webhook endpoints, their attempts, message templates and message settings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from doorstep.domain.notifications.models import WebhookAttempt, WebhookEndpoint


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2000, examples=["https://shop.example.com/hooks/doorstep"])
    events: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="Event names such as delivery.delivered or delivery.*; empty for all",
    )
    description: str | None = Field(default=None, max_length=200)


class EndpointPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, max_length=2000)
    events: list[str] | None = Field(default=None, max_length=100)
    description: str | None = Field(default=None, max_length=200)
    active: bool | None = None


class EndpointOut(BaseModel):
    id: str
    url: str
    events: list[str]
    description: str | None
    active: bool
    disabled_reason: str | None
    failure_streak: int
    created_at: datetime
    rotation_ends_at: datetime | None = None

    @classmethod
    def of(cls, row: WebhookEndpoint) -> EndpointOut:
        return cls(
            id=row.id,
            url=row.url,
            events=list(row.events or []),
            description=row.description,
            active=row.active,
            disabled_reason=row.disabled_reason,
            failure_streak=row.failure_streak or 0,
            created_at=row.created_at,
            rotation_ends_at=row.previous_secret_expires_at if row.previous_secret else None,
        )


class EndpointCreated(EndpointOut):
    secret: str = Field(description="The signing secret (whsec_...), shown only now")


class EndpointList(BaseModel):
    items: list[EndpointOut]


class AttemptOut(BaseModel):
    message_id: str = Field(description="The webhook-id")
    event_type: str
    attempt: int
    status_code: int | None
    duration_ms: int
    response_excerpt: str | None
    error: str | None
    attempted_at: datetime

    @classmethod
    def of(cls, row: WebhookAttempt) -> AttemptOut:
        return cls(
            message_id=row.message_id,
            event_type=row.event_type,
            attempt=row.attempt,
            status_code=row.status_code,
            duration_ms=row.duration_ms,
            response_excerpt=row.response_excerpt,
            error=row.error,
            attempted_at=row.attempted_at,
        )


class AttemptList(BaseModel):
    items: list[AttemptOut]


class ReplayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message_id: str | None = Field(default=None, max_length=32)
    since: AwareDatetime | None = None


class ReplayOut(BaseModel):
    queued: int


class TemplateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: str | None = Field(default=None, max_length=300)
    body: str = Field(min_length=1, max_length=20_000)


class TemplateOut(BaseModel):
    trigger: str
    channel: str
    locale: str
    subject: str | None
    body: str
    updated_at: datetime


class TemplateList(BaseModel):
    items: list[TemplateOut]
    variables: dict[str, str]


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trigger: str = Field(max_length=32)
    channel: str = Field(max_length=16)
    locale: str = Field(default="en", max_length=16)
    subject: str | None = Field(default=None, max_length=300)
    body: str | None = Field(default=None, max_length=20_000)


class SmsLengthOut(BaseModel):
    encoding: str
    units: int
    segments: int


class PreviewOut(BaseModel):
    subject: str
    body: str
    sms: SmsLengthOut | None = None


def preview_out(data: dict[str, Any]) -> PreviewOut:
    return PreviewOut.model_validate(data)


class NotificationSettings(BaseModel):
    triggers: dict[str, list[str]] = Field(
        description="Channels per trigger (email, sms, chat); [] turns a trigger off"
    )
    sms_url: str | None = Field(description="apprise URL for SMS; {phone} is the E.164 number")
    chat_url: str | None
    arriving_soon_minutes: int
    eta_message_interval_minutes: int
    quiet_hours: list[str] | None = Field(description='["21:00", "08:00"], or null for none')
    reply_to: str | None


class NotificationSettingsPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    triggers: dict[str, list[str]] | None = Field(default=None, max_length=20)
    sms_url: str | None = Field(default=None, max_length=2000)
    chat_url: str | None = Field(default=None, max_length=2000)
    arriving_soon_minutes: int | None = Field(default=None, ge=1, le=120)
    eta_message_interval_minutes: int | None = Field(default=None, ge=0, le=24 * 60)
    quiet_hours: list[str] | None = Field(default=None, min_length=2, max_length=2)
    reply_to: str | None = Field(default=None, max_length=254)
