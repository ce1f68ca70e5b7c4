"""What the driver app shows: today's routes with their stops in order, read in one go, and
the signed-in driver behind the session cookie."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from doorstep.clock import Clock
from doorstep.domain.accounts.models import Merchant
from doorstep.domain.dispatch.execution import FAILURE_REASONS
from doorstep.domain.dispatch.models import Driver, Route
from doorstep.domain.dispatch.publishing import driver_routes
from doorstep.domain.orders.models import Order, Parcel

STATUS_LABELS = {
    "planned": "To do",
    "en_route": "On the way",
    "arrived": "Arrived",
    "done": "Delivered",
    "failed": "Not delivered",
    "skipped": "Skipped",
}


@dataclass(frozen=True)
class SignedInDriver:
    """The driver behind a driver-app session."""

    id: str
    merchant_id: str
    name: str
    device_id: str | None
    merchant_name: str
    tz: ZoneInfo

    @property
    def first_name(self) -> str:
        return self.name.split()[0] if self.name.split() else self.name


def load_signed_in(session: Session, driver_id: str) -> SignedInDriver | None:
    """The driver if they still exist and are active (a deactivated driver is signed out)."""
    driver = session.get(Driver, driver_id)
    if driver is None or not driver.active:
        return None
    merchant = session.get(Merchant, driver.merchant_id)
    if merchant is None:  # pragma: no cover - the foreign key guarantees it
        return None
    return SignedInDriver(
        driver.id,
        driver.merchant_id,
        driver.name,
        driver.device_id,
        merchant.name,
        ZoneInfo(merchant.timezone),
    )


@dataclass(frozen=True)
class StopCard:
    id: str
    number: int
    status: str
    status_label: str
    reference: str
    recipient: str
    phone: str | None
    address: str
    window: str | None
    planned: str | None
    instructions: str | None
    parcels: str
    requires_pin: bool
    geo_url: str
    maps_url: str


@dataclass(frozen=True)
class RouteCard:
    id: str
    status: str
    start: str | None
    stops: list[StopCard]

    @property
    def open_stops(self) -> int:
        return sum(1 for s in self.stops if s.status in ("planned", "en_route", "arrived"))


def _hm(value: datetime | None, tz: ZoneInfo) -> str | None:
    return value.astimezone(tz).strftime("%H:%M") if value is not None else None


def _parcels(parcels: list[Parcel], count: int, weight: float) -> str:
    text = f"{count} parcel{'s' if count != 1 else ''}"
    if weight:
        text += f" · {weight:g} kg"
    if any(p.fragile for p in parcels):
        text += " · fragile"
    return text


def today(session: Session, clock: Clock, me: SignedInDriver) -> tuple[str, list[RouteCard]]:
    """The day's label and the driver's published routes of today, stops in order."""
    day = driver_routes(session, clock, me.merchant_id, me.id, None)
    order_ids = [s.order_id for route, _ in day.routes for s in route.stops]
    parcels: dict[str, list[Parcel]] = {}
    if order_ids:
        for parcel in session.scalars(
            select(Parcel).where(
                Parcel.merchant_id == me.merchant_id, Parcel.order_id.in_(order_ids)
            )
        ):
            parcels.setdefault(parcel.order_id, []).append(parcel)
    cards = [_route_card(route, view.orders, parcels, me.tz) for route, view in day.routes]
    return day.day.strftime("%A %d %B %Y"), cards


def _route_card(
    route: Route, orders: dict[str, Order], parcels: dict[str, list[Parcel]], tz: ZoneInfo
) -> RouteCard:
    stops = []
    for n, stop in enumerate(route.stops, start=1):
        order = orders[stop.order_id]
        address = ", ".join(p for p in (order.address_line1, order.address_line2, order.city) if p)
        window = None
        if order.window_start is not None and order.window_end is not None:
            window = f"{_hm(order.window_start, tz)}\u2013{_hm(order.window_end, tz)}"
        label = quote(f"{order.reference} {order.address_line1}")
        stops.append(
            StopCard(
                id=stop.id,
                number=n,
                status=stop.status,
                status_label=STATUS_LABELS.get(stop.status, stop.status),
                reference=order.reference,
                recipient=order.recipient_name,
                phone=order.recipient_phone,
                address=address,
                window=window,
                planned=_hm(stop.eta or stop.planned_arrival, tz),
                instructions=order.instructions,
                parcels=_parcels(parcels.get(order.id, []), order.parcel_count, order.weight_kg),
                requires_pin=order.requires_pin,
                geo_url=f"geo:{order.lat},{order.lon}?q={order.lat},{order.lon}({label})",
                maps_url=(
                    "https://www.openstreetmap.org/directions?to="
                    f"{order.lat}%2C{order.lon}#map=17/{order.lat}/{order.lon}"
                ),
            )
        )
    return RouteCard(route.id, route.status, _hm(route.start_at, tz), stops)


def failure_reasons() -> list[tuple[str, str]]:
    """(value, label) of the reasons the app offers for a failed attempt."""
    return [(reason.value, label) for reason, label in FAILURE_REASONS.items()]
