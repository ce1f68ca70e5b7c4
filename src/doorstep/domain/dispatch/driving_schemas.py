"""What the driving verbs answer (``/v1/routes/{id}/start``, ``/v1/stops/{id}/...``) and what
a sign-in issue answers, in the merchant's timezone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from doorstep.domain.dispatch.models import Route, Stop
from doorstep.domain.dispatch.recipient_changes import RecipientChangeOut
from doorstep.domain.dispatch.schemas import local_time
from doorstep.domain.dispatch.signin import IssuedLogin
from doorstep.domain.orders.models import Order
from doorstep.domain.orders.status import AFTERSHIP_TAG, AfterShipTag, Reason, Status


class StopOrderOut(BaseModel):
    id: str
    reference: str
    status: Status
    reason: Reason | None
    tag: AfterShipTag
    attempts: int
    requires_pin: bool


class StopRunOut(BaseModel):
    """A stop as the driver sees it after an action."""

    id: str
    route_id: str
    sequence: int
    status: str = Field(description="planned, en_route, arrived, done, failed or skipped")
    planned_arrival: datetime | None
    eta: datetime | None
    actual_arrival: datetime | None
    actual_departure: datetime | None
    order: StopOrderOut | None
    recipient_change: RecipientChangeOut | None = Field(
        None, description="What the recipient changed: redirect, hold, new instructions"
    )


class RouteRunOut(BaseModel):
    id: str
    plan_id: str
    driver_id: str
    status: str = Field(description="planned, active, done or superseded (handed to a re-plan)")
    started_at: datetime | None
    completed_at: datetime | None
    stops: list[StopRunOut]


class LoginLinkOut(BaseModel):
    """Hand these to the driver; they are shown once and stored only hashed."""

    driver_id: str
    url: str = Field(description="Opens the driver app signed in (once)")
    code: str = Field(description="Six digits to type at /driver/login instead (once)")
    expires_at: datetime


def stop_run_out(
    stop: Stop, order: Order | None, tz: ZoneInfo, change: RecipientChangeOut | None = None
) -> StopRunOut:
    return StopRunOut(
        id=stop.id,
        route_id=stop.route_id,
        sequence=stop.sequence,
        status=stop.status,
        planned_arrival=local_time(stop.planned_arrival, tz),
        eta=local_time(stop.eta, tz),
        actual_arrival=local_time(stop.actual_arrival, tz),
        actual_departure=local_time(stop.actual_departure, tz),
        order=None
        if order is None
        else StopOrderOut(
            id=order.id,
            reference=order.reference,
            status=Status(order.status),
            reason=Reason(order.reason) if order.reason else None,
            tag=AFTERSHIP_TAG[Status(order.status)],
            attempts=order.attempts,
            requires_pin=order.requires_pin,
        ),
        recipient_change=change,
    )


def route_run_out(
    route: Route,
    orders: dict[str, Order],
    tz: ZoneInfo,
    changes: dict[str, RecipientChangeOut] | None = None,
) -> RouteRunOut:
    return RouteRunOut(
        id=route.id,
        plan_id=route.plan_id,
        driver_id=route.driver_id,
        status=route.status,
        started_at=local_time(route.started_at, tz),
        completed_at=local_time(route.completed_at, tz),
        stops=[
            stop_run_out(s, orders.get(s.order_id), tz, (changes or {}).get(s.order_id))
            for s in route.stops
        ],
    )


def login_link_out(issued: IssuedLogin, tz: ZoneInfo) -> LoginLinkOut:
    return LoginLinkOut(
        driver_id=issued.driver_id,
        url=issued.url,
        code=issued.code,
        expires_at=issued.expires_at.astimezone(tz),
    )
