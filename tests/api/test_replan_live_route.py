"""A re-plan published while a driver is on the road keeps the driver's route under way: the
shift's new route is ``active`` from the same start (no second ``route.started``), the old one
is ``superseded`` (positions and ETAs go to the new one only), and the driver app keeps
working, even on the stop ids the phone still shows."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from doorstep.clock import FrozenClock
from doorstep.db.engine import transaction
from doorstep.domain.orders.models import DeliveryEvent
from doorstep.runtime import Runtime
from tests.conftest import MerchantCtx
from tests.driving import DAY, image_bytes, publish_day
from tests.factories import local, make_order


def _driver_app(client: TestClient, merchant: MerchantCtx, driver_id: str) -> dict[str, str]:
    """Sign the driver in to the app with a link; the headers its actions send."""
    issued = client.post(f"/v1/drivers/{driver_id}/login-link", headers=merchant.headers)
    path = issued.json()["url"].split("://", 1)[1].split("/", 1)[1]
    page = client.get(f"/{path}")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token, page.text
    assert client.post(f"/{path}", data={"csrf_token": token.group(1)}).status_code in (200, 303)
    app = client.get("/driver")
    csrf = re.search(r'data-csrf="([^"]+)"', app.text)
    assert csrf, app.text
    return {"X-CSRF-Token": csrf.group(1)}


def _routes(client: TestClient, merchant: MerchantCtx, plan_id: str) -> dict[str, Any]:
    resp = client.get(f"/v1/plans/{plan_id}", headers=merchant.headers)
    assert resp.status_code == 200, resp.text
    return {r["shift_id"]: r for r in resp.json()["routes"]}


def test_a_replan_during_a_started_route_keeps_it_started(
    client: TestClient, runtime: Runtime, merchant: MerchantCtx, clock: FrozenClock
) -> None:
    """Start, deliver one stop, re-plan with a new order and publish: one ``route.started``,
    the route still under way with its stop done, the new order on a route yet to start, and
    the next stop completed from the app through the stop id it showed before the re-plan."""
    day = publish_day(client, runtime, merchant)
    h = _driver_app(client, merchant, day.driver_id)
    clock.set(local(DAY, 9))
    started = client.post(f"/driver/routes/{day.route['id']}/start", headers=h)
    assert started.status_code == 200, started.text
    open_stops = [s for s in day.route["stops"] if s["order_id"] != day.pin_order_id]
    first, second = open_stops[0], open_stops[1]
    done = client.post(
        f"/driver/stops/{first['id']}/complete",
        files={"signature": ("s.png", image_bytes("PNG"), "image/png")},
        headers={**h, "Idempotency-Key": "first"},
    )
    assert done.status_code == 200, done.text

    clock.set(local(DAY, 9, 30))
    with transaction(runtime.sessions) as s:
        extra = make_order(
            s, merchant.id, reference="LATE-1", lat=43.7370, lon=7.4210,
            window=(local(DAY, 11), local(DAY, 16)), created_at=clock.now(),
        )  # fmt: skip
        extra_id = extra.id
    draft = client.post(
        f"/v1/plans/{day.plan['id']}/replan",
        json={"time_limit_s": 60, "max_iterations": 200},
        headers=merchant.headers,
    )
    assert draft.status_code == 201, draft.text
    published = client.post(f"/v1/plans/{draft.json()['id']}/publish", headers=merchant.headers)
    assert published.status_code == 200, published.text

    routes = _routes(client, merchant, draft.json()["id"])
    new = routes[day.route["shift_id"]]
    old = _routes(client, merchant, day.plan["id"])[day.route["shift_id"]]
    assert (new["status"], old["status"]) == ("active", "superseded")
    by_order = {s["order_id"]: s for s in new["stops"]}
    assert by_order[first["order_id"]]["status"] == "done"
    # The van has left the depot: the new order goes to a route that has not started yet.
    [carrier] = [r for r in routes.values() if extra_id in {s["order_id"] for s in r["stops"]}]
    assert carrier["status"] == "planned"
    order = client.get(f"/v1/orders/{extra_id}", headers=merchant.headers).json()
    assert order["status"] == "scheduled"

    # The app shows the route under way (no start button) and acts on the old stop id.
    page = client.get("/driver")
    assert "Start route" not in re.sub(r"<button[^>]*hidden[^>]*>.*?</button>", "", page.text)
    clock.set(local(DAY, 10))
    again = client.post(
        f"/driver/stops/{second['id']}/complete",
        files={"signature": ("s.png", image_bytes("PNG"), "image/png")},
        headers={**h, "Idempotency-Key": "second"},
    )
    assert again.status_code == 200, again.text
    assert again.json()["order"]["status"] == "delivered"
    assert again.json()["id"] == by_order[second["order_id"]]["id"]

    with transaction(runtime.sessions) as s:
        starts = s.scalars(
            select(DeliveryEvent).where(
                DeliveryEvent.merchant_id == merchant.id, DeliveryEvent.type == "route.started"
            )
        ).all()
    assert len(starts) == 1
