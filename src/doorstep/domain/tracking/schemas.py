"""``GET /v1/orders/{id}/tracking``: what the recipient's page shows, as JSON for integrators
who build their own tracking page. Built from the same
:class:`~doorstep.domain.tracking.view.TrackingView` as the page, so the two always agree
(times ISO 8601 in the merchant's timezone)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from doorstep.domain.orders.status import AfterShipTag, Status
from doorstep.domain.tracking.view import TrackingView


class BrandingOut(BaseModel):
    name: str
    logo_url: str | None
    color: str | None


class RecipientView(BaseModel):
    first_name: str
    street: str
    city: str


class TrackingWindowOut(BaseModel):
    start: datetime
    end: datetime
    sequence: int = Field(description="The iCalendar SEQUENCE: grows when the window moves")


class EtaOut(BaseModel):
    eta: datetime
    earliest: datetime | None
    latest: datetime | None
    confidence: float | None
    source: str = Field(description="`live` (the ETA engine) or `plan` (the planned arrival)")


class DriverPositionOut(BaseModel):
    lat: float = Field(description="Rounded to 3 decimals (about 100 m)")
    lon: float
    heading: float | None
    recorded_at: datetime


class TrackingDriverOut(BaseModel):
    first_name: str | None
    visible: bool = Field(description="Whether the recipient may see the driver on a map now")
    position: DriverPositionOut | None


class ProofOut(BaseModel):
    photo: bool
    signature: bool
    received_by: str | None
    pin_verified: bool


class TimelineItemOut(BaseModel):
    type: str
    occurred_at: datetime
    reason: str | None


class TrackingOut(BaseModel):
    order_id: str
    reference: str
    status: Status
    reason: str | None
    tag: AfterShipTag
    tracking_url: str
    calendar_url: str
    merchant: BrandingOut
    recipient: RecipientView
    window: TrackingWindowOut | None
    eta: EtaOut | None
    stops_before: int | None = Field(description="Open stops on the route before this one")
    driver: TrackingDriverOut
    pin: str | None = Field(description="The delivery PIN, when the order requires one")
    proof: ProofOut | None
    delivered_at: datetime | None
    timeline: list[TimelineItemOut]

    @classmethod
    def of(cls, view: TrackingView, url: str) -> TrackingOut:
        tz = ZoneInfo(view.merchant_timezone)

        def local(value: datetime | None) -> datetime | None:
            return value.astimezone(tz) if value is not None else None

        window = None
        if view.window_start is not None and view.window_end is not None:
            window = TrackingWindowOut(
                start=view.window_start.astimezone(tz),
                end=view.window_end.astimezone(tz),
                sequence=view.window_sequence,
            )
        eta = None
        if view.eta is not None:
            eta = EtaOut(
                eta=view.eta.eta.astimezone(tz),
                earliest=local(view.eta.earliest),
                latest=local(view.eta.latest),
                confidence=view.eta.confidence,
                source=view.eta.source,
            )
        position = None
        if view.driver is not None:
            position = DriverPositionOut(
                lat=view.driver.lat,
                lon=view.driver.lon,
                heading=view.driver.heading,
                recorded_at=view.driver.recorded_at.astimezone(tz),
            )
        proof = None
        if view.proof is not None:
            proof = ProofOut(
                photo=view.proof.photo,
                signature=view.proof.signature,
                received_by=view.proof.received_by,
                pin_verified=view.proof.pin_verified,
            )
        return cls(
            order_id=view.order_id,
            reference=view.reference,
            status=view.status,
            reason=view.reason,
            tag=AfterShipTag(view.tag),
            tracking_url=url,
            calendar_url=f"{url}/calendar.ics",
            merchant=BrandingOut(
                name=view.merchant_name,
                logo_url=view.branding.get("logo_url") or None,
                color=view.branding.get("color") or None,
            ),
            recipient=RecipientView(
                first_name=view.recipient_first_name, street=view.street, city=view.city
            ),
            window=window,
            eta=eta,
            stops_before=view.stops_before,
            driver=TrackingDriverOut(
                first_name=view.driver_first_name, visible=view.driver_visible, position=position
            ),
            pin=view.pin,
            proof=proof,
            delivered_at=local(view.delivered_at),
            timeline=[
                TimelineItemOut(
                    type=e.type, occurred_at=e.occurred_at.astimezone(tz), reason=e.reason
                )
                for e in view.timeline
            ],
        )
