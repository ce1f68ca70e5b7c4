"""A recipient who was out at the morning attempt rebooks for this evening: the order joins
the published plan at once (on a route that leaves the depot after the van carrying the parcel
is back), the driver of that route sees the stop, the recipient's page shows the new window
and its planned time, and the dispatcher's next re-plan keeps it. A window no such route can
reach is neither offered nor accepted.

Wednesday 25 November 2026 in Monaco: van A works 08:00-13:00 and returns to the depot, van B
13:30-19:00; the calendar has 09-11, 11-13 and 16-18 windows every day, same-day until 14:00."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from doorstep.clock import FrozenClock
from doorstep.db.engine import transaction
from doorstep.domain.errors import Actor
from doorstep.domain.orders.events import append_event
from doorstep.domain.orders.models import Order
from doorstep.runtime import Runtime
from tests.api.test_tracking_selfservice import path_of, post, visible_text
from tests.conftest import MerchantCtx
from tests.driving import image_bytes
from tests.factories import local, make_depot, make_driver, make_shift, make_vehicle
from tests.slots_setup import EVERY_DAY, create_calendar, create_zone

DAY = date(2026, 11, 25)
EVENING = "2026-11-25T16:00:00+01:00"
MIDDAY = "2026-11-25T11:00:00+01:00"
# [lat, lon, window start hour]: X (the recipient who is out) and a neighbour in the morning,
# two evening deliveries that give van B its route.
PLACES = [
    ("X", 43.7405, 7.4263, 9),
    ("Y", 43.7411, 7.4290, 9),
    ("Z", 43.7320, 7.4190, 16),
    ("W", 43.7380, 7.4230, 16),
]


@dataclass
class Day:
    plan: dict[str, Any]
    calendar_id: str
    orders: dict[str, dict[str, Any]]
    van_a: dict[str, Any]  # the published route of the morning van
    van_b: dict[str, Any]


def order_body(ref: str, lat: float, lon: float, hour: int) -> dict[str, Any]:
    return {
        "reference": ref,
        "recipient": {"name": f"Recipient {ref}", "phone": "+33612345678"},
        "address": {"line1": "1 Avenue de la Costa", "city": "Monaco", "country": "MC"}
        | {"lat": lat, "lon": lon},
        "window": {
            "start": local(DAY, hour).isoformat(),
            "end": local(DAY, hour + 2).isoformat(),
        },
        "parcels": [{"weight_kg": 2.0}],
    }


@pytest.fixture
def day(app_client: TestClient, runtime: Runtime, merchant: MerchantCtx) -> Day:
    with transaction(runtime.sessions) as s:
        depot = make_depot(s, merchant.id)
        depot_id = depot.id
        for name, start, end in (("A", (8, 0), (13, 0)), ("B", (13, 30), (19, 0))):
            make_shift(
                s,
                merchant.id,
                driver=make_driver(s, merchant.id, name=f"Driver {name}"),
                vehicle=make_vehicle(s, merchant.id, name=f"Van {name}"),
                depot=depot,
                start_at=local(DAY, *start),
                end_at=local(DAY, *end),
            )
    zone_id = create_zone(app_client, merchant, depot_id)
    windows = [
        {"days": EVERY_DAY, "start": f"{h:02d}:00", "end": f"{h + 2:02d}:00", "capacity": 20}
        for h in (9, 11, 16)
    ]
    cal = create_calendar(
        app_client, merchant, depot_id, zone_id, windows=windows, same_day_cutoff="14:00"
    )
    orders = {}
    for ref, lat, lon, hour in PLACES:
        r = app_client.post(
            "/v1/orders", headers=merchant.headers, json=order_body(ref, lat, lon, hour)
        )
        assert r.status_code == 201, r.text
        orders[ref] = r.json()
    body = {"depot_id": depot_id, "date": DAY.isoformat(), "max_iterations": 200}
    plan = app_client.post("/v1/plans", json=body, headers=merchant.headers)
    assert plan.status_code == 201, plan.text
    published = app_client.post(f"/v1/plans/{plan.json()['id']}/publish", headers=merchant.headers)
    assert published.status_code == 200, published.text
    view = published.json()
    by_van = {r["vehicle"]["name"]: r for r in view["routes"]}
    assert [s["order_id"] for s in by_van["Van A"]["stops"]].count(orders["X"]["id"]) == 1
    return Day(view, cal["id"], orders, by_van["Van A"], by_van["Van B"])


def fail_x(app_client: TestClient, runtime: Runtime, merchant: MerchantCtx, day: Day) -> str:
    """Van A sets off at 09:00, expects to be at X's door at 09:05 and finds nobody there;
    the stop's id."""
    clock = runtime.clock
    assert isinstance(clock, FrozenClock)
    clock.set(local(DAY, 9))
    started = app_client.post(f"/v1/routes/{day.van_a['id']}/start", headers=merchant.headers)
    assert started.status_code == 200, started.text
    stop = next(s for s in day.van_a["stops"] if s["order_id"] == day.orders["X"]["id"])
    with transaction(runtime.sessions) as s:  # the ETA engine's last word on that attempt
        order = s.get(Order, day.orders["X"]["id"])
        assert order is not None
        append_event(
            s,
            clock,
            merchant_id=merchant.id,
            type="delivery.eta_updated",
            actor=Actor.system(),
            order=order,
            route_id=day.van_a["id"],
            data={"stop_id": stop["id"], "eta": local(DAY, 9, 5).isoformat(), "stops_before": 0},
        )
    failed = app_client.post(
        f"/v1/stops/{stop['id']}/fail",
        data={"reason": "consignee_not_home"},
        files={"photo": ("door.jpg", image_bytes(), "image/jpeg")},
        headers=merchant.headers,
    )
    assert failed.status_code == 200, failed.text
    clock.advance(timedelta(minutes=30))
    return str(stop["id"])


def plan_now(client: TestClient, merchant: MerchantCtx, plan_id: str) -> dict[str, Any]:
    r = client.get(f"/v1/plans/{plan_id}", headers=merchant.headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_a_same_day_rebooking_joins_the_live_plan_and_the_driver_and_recipient_see_it(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx, day: Day
) -> None:
    """The tracking page offers this evening; choosing it puts X on van B's published route
    in the window, van B's driver gets the stop, the page shows the new window and its
    planned time, van A keeps the failed attempt, and a re-plan keeps X planned."""
    failed_stop = fail_x(app_client, runtime, merchant, day)
    x = day.orders["X"]
    page = app_client.get(path_of(x)).text
    value = f"{day.calendar_id}|{EVENING}"
    assert value in page, "this evening's window is offered after the failed attempt"
    assert f"{day.calendar_id}|{MIDDAY}" not in page, "no route that can load it reaches 11-13"

    done = post(app_client, path_of(x), "reschedule", {"window": value})
    assert done.status_code == 303, done.text

    order = app_client.get(f"/v1/orders/{x['id']}", headers=merchant.headers).json()
    assert order["window"]["start"] == EVENING
    assert order["status"] == "scheduled"
    plan = plan_now(app_client, merchant, day.plan["id"])
    routes = {r["vehicle"]["name"]: r for r in plan["routes"]}
    joined = [s for s in routes["Van B"]["stops"] if s["order_id"] == x["id"]]
    assert len(joined) == 1, "X is on van B's published route"
    arrival = joined[0]["planned_arrival"]
    assert "2026-11-25T16:00:00+01:00" <= arrival < "2026-11-25T18:00:00+01:00"
    kept = [s for s in routes["Van A"]["stops"] if s["order_id"] == x["id"]]
    assert [(s["id"], s["status"]) for s in kept] == [(failed_stop, "failed")]

    driver_b = routes["Van B"]["driver"]["id"]
    carried = app_client.get(f"/v1/drivers/{driver_b}/route", headers=merchant.headers).json()
    assert x["id"] in [s["order_id"] for r in carried["routes"] for s in r["stops"]]
    events = app_client.get(f"/v1/orders/{x['id']}/events", headers=merchant.headers).json()
    types = [e["type"] for e in events["data"]]
    assert types.index("order.rescheduled") < types.index("route.stop_added")

    tracking = app_client.get(f"/v1/orders/{x['id']}/tracking", headers=merchant.headers).json()
    assert tracking["window"]["start"] == EVENING
    assert tracking["eta"]["source"] == "plan", tracking["eta"]  # not the failed stop's
    assert "2026-11-25T16:00:00+01:00" <= tracking["eta"]["eta"] < "2026-11-25T18:00:00+01:00"
    shown = visible_text(app_client.get(path_of(x)).text)
    assert "16:00" in shown and "18:00" in shown

    replanned = app_client.post(
        f"/v1/plans/{day.plan['id']}/replan",
        json={"max_iterations": 200},
        headers=merchant.headers,
    )
    assert replanned.status_code == 201, replanned.text
    draft = replanned.json()
    placed = [s["status"] for r in draft["routes"] for s in r["stops"] if s["order_id"] == x["id"]]
    assert placed == ["planned"], "the re-plan keeps the rebooked delivery to make"
    assert x["id"] not in [u["order_id"] for u in draft["unassigned"]]


def test_a_rebooking_no_loadable_route_can_keep_is_refused_and_changes_nothing(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx, day: Day
) -> None:
    """11-13 today is only on van A's way, which carries the parcel and cannot stop twice:
    the API says why it is not offered and refuses the move; the order stays failed."""
    fail_x(app_client, runtime, merchant, day)
    x = day.orders["X"]
    options = app_client.get(
        f"/v1/orders/{x['id']}/delivery-options", headers=merchant.headers
    ).json()
    starts = [w["start"] for w in options["windows"]]
    assert EVENING in starts and MIDDAY not in starts
    moved = app_client.post(
        f"/v1/orders/{x['id']}/reschedule",
        headers=merchant.headers,
        json={"calendar_id": day.calendar_id, "start": MIDDAY},
    )
    assert moved.status_code == 409, moved.text
    problem = moved.json()
    assert problem["errors"][0]["code"] == "unreachable", problem
    assert "no route" in problem["detail"]
    order = app_client.get(f"/v1/orders/{x['id']}", headers=merchant.headers).json()
    assert order["status"] == "delivery_failed"
    assert order["window"]["start"] == "2026-11-25T09:00:00+01:00"
    plan = plan_now(app_client, merchant, day.plan["id"])
    assert x["id"] not in [
        s["order_id"]
        for s in next(r for r in plan["routes"] if r["vehicle"]["name"] == "Van B")["stops"]
    ]


def test_a_same_day_checkout_order_joins_the_live_plan_at_once(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx, day: Day
) -> None:
    """At 09:30, with van A out, a shop's checkout quotes this evening for a new address,
    holds it and confirms the order: it goes onto van B's published route straight away (the
    quote offered the window because the live plan could keep it), scheduled with a planned
    arrival in the window, instead of waiting unplanned for the dispatcher's re-plan."""
    clock = runtime.clock
    assert isinstance(clock, FrozenClock)
    clock.set(local(DAY, 9))
    started = app_client.post(f"/v1/routes/{day.van_a['id']}/start", headers=merchant.headers)
    assert started.status_code == 200, started.text
    clock.set(local(DAY, 9, 30))
    point = {"lat": 43.7350, "lon": 7.4210}
    address = {"line1": "3 Rue Grimaldi", "city": "Monaco", "country": "MC"} | point
    quote = app_client.post(
        "/v1/slots/quote",
        headers=merchant.headers,
        json={"address": point, "from": DAY.isoformat(), "to": DAY.isoformat()},
    )
    assert quote.status_code == 200, quote.text
    assert EVENING in [w["start"] for w in quote.json()["windows"]]
    held = app_client.post(
        "/v1/slots/reservations",
        headers=merchant.headers,
        json={"calendar_id": day.calendar_id, "start": EVENING, "address": point},
    )
    assert held.status_code == 201, held.text
    body = order_body("V", address["lat"], address["lon"], 16) | {"address": address}
    body |= {"reservation_id": held.json()["id"]}
    body.pop("window")
    created = app_client.post("/v1/orders", headers=merchant.headers, json=body)
    assert created.status_code == 201, created.text
    order = created.json()
    assert order["status"] == "scheduled"
    routes = {
        r["vehicle"]["name"]: r for r in plan_now(app_client, merchant, day.plan["id"])["routes"]
    }
    joined = [s for s in routes["Van B"]["stops"] if s["order_id"] == order["id"]]
    assert len(joined) == 1, "the checkout order is on van B's published route"
    assert EVENING <= joined[0]["planned_arrival"] < "2026-11-25T18:00:00+01:00"
    assert order["id"] not in [s["order_id"] for s in routes["Van A"]["stops"]]
    events = app_client.get(f"/v1/orders/{order['id']}/events", headers=merchant.headers).json()
    types = [e["type"] for e in events["data"]]
    assert types.index("order.created") < types.index("route.stop_added")
