"""A delivery day seen from the recipients' side, for the tracking tests: orders created through
the API (so their tracking links are real), one published route driven by "Marco Rossi" with
the orders as stops in order, and helpers to move statuses and write positions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi.testclient import TestClient

from doorstep.db.engine import transaction
from doorstep.domain.accounts.models import Merchant
from doorstep.domain.dispatch.models import Plan, Route, Stop
from doorstep.domain.errors import Actor
from doorstep.domain.orders.events import append_event
from doorstep.domain.orders.models import Order
from doorstep.domain.tracking.models import Position
from doorstep.ids import new_id
from doorstep.runtime import Runtime
from tests.conftest import NOW, MerchantCtx
from tests.factories import make_depot, make_driver, make_shift, make_vehicle

# NOW is 07:00 UTC = 08:00 in Monaco; the windows are 09:00-11:00 Monaco (08:00-10:00 UTC).
WINDOW = {"start": "2026-11-25T09:00:00+01:00", "end": "2026-11-25T11:00:00+01:00"}
STOPS = [
    ("Ada Lovelace", "+33612345678", "ada@example.com", "1 Avenue de la Costa", 43.7405, 7.4263),
    (
        "Grace Hopper",
        "+37799999999",
        "grace@example.com",
        "2 Boulevard des Moulins",
        43.7411,
        7.429,
    ),
    ("Alan Turing", "+37798888888", "alan@example.com", "3 Rue Grimaldi", 43.7320, 7.4190),
]


@dataclass
class Scene:
    merchant: MerchantCtx
    route_id: str
    driver_id: str
    orders: list[dict[str, Any]] = field(default_factory=list)  # API answers, in stop order

    def token(self, index: int) -> str:
        return str(self.orders[index]["tracking_url"]).rsplit("/", 1)[1]

    def path(self, index: int) -> str:
        return f"/t/{self.token(index)}"


def order_body(
    index: int, locale: str | None = None, window: dict[str, str] | None = None, **changes: Any
) -> dict[str, Any]:
    name, phone, email, street, lat, lon = STOPS[index]
    body: dict[str, Any] = {
        "reference": f"SO-{1001 + index}",
        "recipient": {"name": name, "phone": phone, "email": email},
        "address": {
            "line1": street,
            "city": "Monaco",
            "postal_code": "98000",
            "country": "MC",
            "lat": lat,
            "lon": lon,
        },
        "window": window or WINDOW,
        "service_level": "scheduled",
        "parcels": [{"weight_kg": 2.0}],
    }
    if locale:
        body["recipient"]["locale"] = locale
    body.update(changes)
    return body


def build_scene(
    client: TestClient | httpx.Client,
    runtime: Runtime,
    merchant: MerchantCtx,
    *,
    locales: tuple[str | None, ...] = (None, None, None),
    branding: dict[str, str] | None = None,
    config: dict[str, Any] | None = None,
    window: dict[str, str] | None = None,
) -> Scene:
    """Three orders on one published route, stops 1-3 in the order of :data:`STOPS`."""
    orders = []
    for index, locale in enumerate(locales):
        resp = client.post(
            "/v1/orders", json=order_body(index, locale, window), headers=merchant.headers
        )
        assert resp.status_code == 201, resp.text
        orders.append(resp.json())
    with transaction(runtime.sessions) as s:
        m = s.get(Merchant, merchant.id)
        assert m is not None
        m.branding = branding or {"color": "#0b6e4f", "logo_url": "https://shop.example/logo.png"}
        m.config = config or {}
        depot = make_depot(s, merchant.id)
        vehicle = make_vehicle(s, merchant.id)
        driver = make_driver(s, merchant.id, name="Marco Rossi")
        start = NOW
        shift = make_shift(
            s,
            merchant.id,
            driver=driver,
            vehicle=vehicle,
            depot=depot,
            start_at=start,
            end_at=start + timedelta(hours=8),
        )
        plan = Plan(
            id=new_id("pln", NOW),
            merchant_id=merchant.id,
            depot_id=depot.id,
            date=NOW.date(),
            status="published",
            seed=1,
            time_limit_s=1.0,
            travel_provider="straight",
            created_at=NOW,
            published_at=NOW,
        )
        route = Route(
            id=new_id("rte", NOW),
            merchant_id=merchant.id,
            plan=plan,
            shift_id=shift.id,
            driver_id=driver.id,
            vehicle_id=vehicle.id,
            position=0,
            status="active",
        )
        s.add_all([plan, route])
        for index, order in enumerate(orders):
            s.add(
                Stop(
                    id=new_id("stp", NOW),
                    merchant_id=merchant.id,
                    route=route,
                    order_id=order["id"],
                    sequence=index + 1,
                    status="planned",
                    planned_arrival=NOW + timedelta(minutes=75 + 20 * index),
                )
            )
        s.flush()
        route_id, driver_id = route.id, driver.id
    return Scene(merchant, route_id, driver_id, orders)


def set_status(
    client: TestClient | httpx.Client, scene: Scene, index: int, *statuses: str, **extra: Any
) -> None:
    for status in statuses:
        resp = client.post(
            f"/v1/orders/{scene.orders[index]['id']}/status",
            json={"status": status, **extra},
            headers=scene.merchant.headers,
        )
        assert resp.status_code == 200, resp.text


def finish_stop(runtime: Runtime, scene: Scene, index: int) -> None:
    """Mark stop ``index`` done (as the driver app will)."""
    with transaction(runtime.sessions) as s:
        stop = s.query(Stop).filter_by(order_id=scene.orders[index]["id"]).one()
        stop.status = "done"


def write_position(
    runtime: Runtime, scene: Scene, lat: float, lon: float, at: datetime | None = None
) -> None:
    """A GPS fix of the route's driver, written through the ORM as the ingest endpoint will."""
    when = at or runtime.clock.now()
    with transaction(runtime.sessions) as s:
        s.add(
            Position(
                merchant_id=scene.merchant.id,
                driver_id=scene.driver_id,
                route_id=scene.route_id,
                source="osmand",
                recorded_at=when,
                received_at=when,
                lat=lat,
                lon=lon,
                heading_deg=90.0,
            )
        )


def write_eta(
    runtime: Runtime,
    scene: Scene,
    index: int,
    earliest: datetime,
    latest: datetime,
    stops_before: int,
) -> None:
    """A ``delivery.eta_updated`` event as the ETA engine writes it."""
    eta = earliest + (latest - earliest) / 2
    with transaction(runtime.sessions) as s:
        order = s.get(Order, scene.orders[index]["id"])
        assert order is not None
        append_event(
            s,
            runtime.clock,
            merchant_id=order.merchant_id,
            type="delivery.eta_updated",
            actor=Actor.system(),
            order=order,
            data={
                "eta": eta.astimezone(UTC).isoformat(),
                "earliest": earliest.astimezone(UTC).isoformat(),
                "latest": latest.astimezone(UTC).isoformat(),
                "confidence": 0.9,
                "stops_before": stops_before,
                "minutes_away": 30,
                "reason": "position",
                "previous_eta": None,
            },
        )
