"""What a recipient may see of one delivery: the data behind the tracking page, its live
updates and ``GET /v1/orders/{id}/tracking``, built in one place so they always agree.

Privacy (the brief's rules) is applied here, not in templates: the recipient's first name and
street only (never phone or e-mail); the driver's first name; the driver's position only while
the delivery is out for delivery (or delayed while out) and at most
``tracking_driver_visible_stops`` stops before it, rounded to :data:`POSITION_DECIMALS`
decimals (about 100 m); nothing about other stops but how many come first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from doorstep.domain.accounts.models import Merchant
from doorstep.domain.dispatch.models import Driver, Plan, Route, Stop
from doorstep.domain.orders.models import DeliveryEvent, Order
from doorstep.domain.orders.queries import get_order
from doorstep.domain.orders.status import AFTERSHIP_TAG, Status
from doorstep.domain.tracking.config import tracking_config
from doorstep.domain.tracking.models import Position

POSITION_DECIMALS = 3
DESTINATION_DECIMALS = 4
OPEN_STOP_STATUSES = frozenset({"planned", "en_route", "arrived"})
DRIVER_SHOWN_STATUSES = frozenset({Status.OUT_FOR_DELIVERY, Status.DELIVERY_DELAYED})

# Event types that appear on the recipient's timeline (the others are internal detail).
TIMELINE_TYPES = frozenset(
    {
        "order.created",
        "order.cancelled",
        "delivery.scheduled",
        "delivery.picked_up",
        "delivery.in_transit",
        "delivery.out_for_delivery",
        "delivery.delayed",
        "delivery.delivered",
        "delivery.failed",
        "delivery.ready_for_pickup",
        "delivery.return_to_sender",
        "delivery.on_hold",
        "delivery.rescheduled",
        "order.rescheduled",
        "order.redirected",
        "order.instructions_changed",
        "order.held",
        "stop.arrived",
    }
)


@dataclass(frozen=True)
class TimelineEntry:
    """One line of the timeline: what (``type``, plus a window change for ``order.updated``),
    when, and why (``reason``)."""

    seq: int
    type: str
    occurred_at: datetime
    reason: str | None = None


@dataclass(frozen=True)
class EtaWindow:
    """When the driver is expected: a point and, from the ETA engine, a range around it.

    ``source`` is ``live`` (the latest ``delivery.eta_updated`` event) or ``plan`` (the stop's
    planned or estimated arrival, before any live estimate)."""

    eta: datetime
    earliest: datetime | None
    latest: datetime | None
    confidence: float | None
    source: str


@dataclass(frozen=True)
class DriverMarker:
    lat: float
    lon: float
    heading: float | None
    recorded_at: datetime


@dataclass(frozen=True)
class Proof:
    photo: bool
    signature: bool
    received_by: str | None
    pin_verified: bool


@dataclass
class TrackingView:
    order_id: str
    reference: str
    status: Status
    reason: str | None
    tag: str
    merchant_id: str
    merchant_name: str
    merchant_timezone: str
    merchant_locale: str
    branding: dict[str, str]
    recipient_first_name: str
    recipient_locale: str | None
    street: str
    city: str
    destination: tuple[float, float] | None  # None while the order needs a location
    window_start: datetime | None
    window_end: datetime | None
    window_sequence: int
    delivered_at: datetime | None
    eta: EtaWindow | None
    stops_before: int | None
    route_id: str | None
    driver_first_name: str | None
    driver_visible: bool
    driver: DriverMarker | None
    pin: str | None
    proof: Proof | None
    last_seq: int
    timeline: list[TimelineEntry] = field(default_factory=list)

    @property
    def is_active(self) -> bool:
        """Still worth watching live (not delivered, cancelled or returned)."""
        return self.status not in (Status.DELIVERED, Status.CANCELLED, Status.RETURN_TO_SENDER)


def first_name(full_name: str | None) -> str:
    """The first word of a name (what a recipient or driver is shown as)."""
    parts = (full_name or "").split()
    return parts[0] if parts else ""


_BRANDING_KEYS = ("logo_url", "color", "support_email", "support_phone")


def safe_branding(raw: dict[str, Any] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for key in _BRANDING_KEYS:
        value = (raw or {}).get(key)
        if isinstance(value, str) and value.strip():
            out[key] = value.strip()
    colour = out.get("color", "")  # "#RRGGBB" only: it goes into the page's CSS
    if not (len(colour) == 7 and colour.startswith("#") and _is_hex(colour[1:])):
        out.pop("color", None)
    logo = out.get("logo_url", "")
    if logo and not logo.startswith(("https://", "http://", "/")):
        out.pop("logo_url", None)
    return {key: out.get(key, "") for key in _BRANDING_KEYS}


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _current_stop(session: Session, order: Order) -> Stop | None:
    """The order's stop on a route of its published plan, if it has one."""
    return session.scalar(
        select(Stop)
        .join(Route, Route.id == Stop.route_id)
        .join(Plan, Plan.id == Route.plan_id)
        .where(
            Stop.order_id == order.id,
            Stop.merchant_id == order.merchant_id,
            Plan.status == "published",
        )
        # A failed attempt kept as history comes after the rebooking's new stop.
        .order_by(Plan.published_at.desc(), (Stop.status == "failed").asc())
        .limit(1)
    )


# Orders whose stop no longer counts as "before yours", whatever the stop row says yet.
GONE_ORDER_STATUSES = frozenset(
    {
        Status.DELIVERED.value,
        Status.DELIVERY_FAILED.value,
        Status.CANCELLED.value,
        Status.RETURN_TO_SENDER.value,
        Status.READY_FOR_PICKUP.value,
    }
)


def _stops_before(session: Session, stop: Stop) -> int:
    """Open stops before ``stop`` on its route whose orders are still to be delivered."""
    sequences = session.scalars(
        select(Stop.sequence)
        .join(Order, Order.id == Stop.order_id)
        .where(
            Stop.route_id == stop.route_id,
            Stop.sequence < stop.sequence,
            Stop.status.in_(OPEN_STOP_STATUSES),
            Order.status.not_in(GONE_ORDER_STATUSES),
        )
    )
    return len(list(sequences))


def _latest_position(session: Session, route: Route) -> Position | None:
    return session.scalar(
        select(Position)
        .where(Position.route_id == route.id, Position.merchant_id == route.merchant_id)
        .order_by(Position.recorded_at.desc(), Position.id.desc())
        .limit(1)
    )


def _eta(events: list[DeliveryEvent], stop: Stop | None) -> tuple[EtaWindow | None, int | None]:
    """The latest live ETA of the current stop (and its ``stops_before``), else the plan's
    arrival. A live ETA of another stop (a failed attempt before a rebooking, a route the
    stop left) is stale."""
    for ev in reversed(events):
        if ev.type != "delivery.eta_updated":
            continue
        data = ev.data or {}
        if data.get("stop_id") is not None and (stop is None or data["stop_id"] != stop.id):
            continue
        eta = _parse_time(data.get("eta"))
        if eta is None:
            continue
        confidence = data.get("confidence")
        stops = data.get("stops_before")
        return (
            EtaWindow(
                eta=eta,
                earliest=_parse_time(data.get("earliest")),
                latest=_parse_time(data.get("latest")),
                confidence=float(confidence) if isinstance(confidence, int | float) else None,
                source="live",
            ),
            stops if isinstance(stops, int) and not isinstance(stops, bool) else None,
        )
    if stop is not None and stop.status in OPEN_STOP_STATUSES:
        planned = stop.eta or stop.planned_arrival
        if planned is not None:
            return EtaWindow(planned, None, None, None, "plan"), None
    return None, None


def _proof(events: list[DeliveryEvent]) -> Proof | None:
    for ev in reversed(events):
        if ev.type == "delivery.delivered":
            raw = (ev.data or {}).get("proof")
            proof = raw if isinstance(raw, dict) else {}
            received = proof.get("received_by")
            return Proof(
                photo=bool(proof.get("photo")),
                signature=bool(proof.get("signature")),
                received_by=first_name(received) if isinstance(received, str) else None,
                pin_verified=bool(proof.get("pin_verified")),
            )
    return None


def _timeline(events: list[DeliveryEvent]) -> list[TimelineEntry]:
    out: list[TimelineEntry] = []
    for ev in events:
        kind = ev.type
        if kind == "order.updated":
            changes = (ev.data or {}).get("changes") or []
            if "window" not in changes and "window_start" not in changes:
                continue
            kind = "order.window_changed"
        elif kind not in TIMELINE_TYPES:
            continue
        out.append(TimelineEntry(ev.seq, kind, ev.occurred_at, ev.reason))
    return out


def _was_out(events: list[DeliveryEvent]) -> bool:
    return any(ev.type == "delivery.out_for_delivery" for ev in events)


def load_tracking_view(session: Session, order: Order) -> TrackingView:
    """Everything the recipient of ``order`` may see, as of now."""
    merchant = session.get(Merchant, order.merchant_id)
    assert merchant is not None
    events = list(
        session.scalars(
            select(DeliveryEvent)
            .where(DeliveryEvent.order_id == order.id, DeliveryEvent.merchant_id == merchant.id)
            .order_by(DeliveryEvent.seq)
        )
    )
    status = Status(order.status)
    stop = _current_stop(session, order)
    route = session.get(Route, stop.route_id) if stop is not None else None
    eta, live_stops_before = _eta(events, stop)
    stops_before: int | None = None
    if stop is not None and stop.status in OPEN_STOP_STATUSES:
        stops_before = _stops_before(session, stop)
        if live_stops_before is not None and eta is not None and eta.source == "live":
            stops_before = min(stops_before, live_stops_before)
    driver_name: str | None = None
    marker: DriverMarker | None = None
    visible = False
    if route is not None:
        driver = session.get(Driver, route.driver_id)
        driver_name = first_name(driver.name) if driver is not None else None
        out = status is Status.OUT_FOR_DELIVERY or (
            status is Status.DELIVERY_DELAYED and _was_out(events)
        )
        limit = tracking_config(merchant.config).driver_visible_stops
        visible = out and stops_before is not None and stops_before <= limit
        if visible:
            pos = _latest_position(session, route)
            if pos is not None:
                marker = DriverMarker(
                    lat=round(pos.lat, POSITION_DECIMALS),
                    lon=round(pos.lon, POSITION_DECIMALS),
                    heading=round(pos.heading_deg) if pos.heading_deg is not None else None,
                    recorded_at=pos.recorded_at,
                )
    pin: str | None = None
    if order.requires_pin and status is not Status.DELIVERED:
        pin = order.delivery_pin
    return TrackingView(
        order_id=order.id,
        reference=order.reference,
        status=status,
        reason=order.reason,
        tag=AFTERSHIP_TAG[status].value,
        merchant_id=merchant.id,
        merchant_name=merchant.name,
        merchant_timezone=merchant.timezone,
        merchant_locale=merchant.locale,
        branding=safe_branding(merchant.branding),
        recipient_first_name=first_name(order.recipient_name),
        recipient_locale=order.recipient_locale,
        street=order.address_line1,
        city=order.city,
        destination=(
            (round(order.lat, DESTINATION_DECIMALS), round(order.lon, DESTINATION_DECIMALS))
            if order.lat is not None and order.lon is not None
            else None
        ),
        window_start=order.window_start,
        window_end=order.window_end,
        window_sequence=order.window_sequence,
        delivered_at=order.delivered_at,
        eta=eta if status not in (Status.DELIVERED, Status.CANCELLED) else None,
        stops_before=stops_before if status not in (Status.DELIVERED,) else None,
        route_id=route.id if route is not None else None,
        driver_first_name=driver_name,
        driver_visible=visible,
        driver=marker,
        pin=pin,
        proof=_proof(events) if status is Status.DELIVERED else None,
        last_seq=events[-1].seq if events else 0,
        timeline=_timeline(events),
    )


class OrderTracking(NamedTuple):
    view: TrackingView
    order: Order


def order_tracking(session: Session, merchant_id: str, order_id: str) -> OrderTracking:
    """The tracking view of the merchant's order ``order_id`` (404 for anyone else's), with
    the order (for its tracking link)."""
    order = get_order(session, merchant_id, order_id)
    return OrderTracking(load_tracking_view(session, order), order)
