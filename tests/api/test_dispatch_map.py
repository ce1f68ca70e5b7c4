"""The dispatch map shows what is wrong: orders left out (grouped by reason, with address and
window, and on the map), stop statuses in their own styles, problems marked on the stops, a
legend and show/hide switches; publishing a plan with problems needs their number confirmed
(console always, API when asked); the manifest names its route; status errors say what may
follow.

The day is the seeded Monaco day of ``tests.factories`` plus three orders the planner cannot
place, planned through the domain with a 0.5 s search."""

from __future__ import annotations

import csv
import html
import io
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from doorstep.db.engine import transaction
from doorstep.domain.accounts.models import Role
from doorstep.domain.dispatch import moves, views
from doorstep.domain.dispatch.planning import create_plan
from doorstep.domain.errors import Actor, InvalidTransition
from doorstep.domain.orders.events import change_status
from doorstep.domain.orders.models import Order
from doorstep.domain.orders.status import Status
from doorstep.runtime import Runtime
from doorstep.settings import Settings
from tests.conftest import TEST_SECRET, MerchantCtx
from tests.console_session import make_user, sign_in
from tests.factories import Day, local, make_order, monaco_day

DAY = date(2026, 11, 25)  # the frozen clock's day in Monaco
DISPATCHER = "disp@example.com"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", secret_key=TEST_SECRET, plan_time_limit_s=0.5)


@dataclass
class Planned:
    merchant: MerchantCtx
    day: Day
    plan_id: str
    extra: dict[str, str]  # reference -> order id of the orders left out


@pytest.fixture
def planned(runtime: Runtime, merchant: MerchantCtx) -> Planned:
    """The Monaco day with HEAVY (too big), COLD (needs a skill) and EARLY (before every
    shift) left out, planned as a draft."""
    with transaction(runtime.sessions) as s:
        day = monaco_day(s, merchant.id, DAY)
        window = (local(DAY, 10), local(DAY, 12))
        extra = {
            "HEAVY": make_order(
                s,
                merchant.id,
                reference="HEAVY",
                lat=43.74,
                lon=7.42,
                window=window,
                weight_kg=500,
                address_line1="7 Rue Grimaldi",
            ).id,
            "COLD": make_order(
                s,
                merchant.id,
                reference="COLD",
                lat=43.741,
                lon=7.421,
                window=window,
                skills=["refrigerated"],
            ).id,
            "EARLY": make_order(
                s,
                merchant.id,
                reference="EARLY",
                lat=43.742,
                lon=7.422,
                window=(local(DAY, 5), local(DAY, 6)),
            ).id,
        }
    view = create_plan(
        runtime.sessions,
        runtime.clock,
        runtime.settings,
        merchant_id=merchant.id,
        depot_id=day.depot_id,
        day=DAY,
    )
    return Planned(merchant, day, view.plan.id, extra)


def _break_a_rule(runtime: Runtime, p: Planned) -> None:
    """Place COLD on the first route: the route then breaks one rule (missing skill)."""
    with transaction(runtime.sessions) as s:
        first = views.load_plan(s, p.merchant.id, p.plan_id).routes[0].id
        moves.move_stop(
            s,
            runtime.clock,
            runtime.settings,
            p.merchant.id,
            p.plan_id,
            order_id=p.extra["COLD"],
            to_route_id=first,
            position=0,
            actor=Actor.system(),
        )


def _signed_in(client: TestClient, runtime: Runtime, p: Planned) -> str:
    make_user(runtime, p.merchant.id, DISPATCHER, Role.DISPATCHER)
    return sign_in(client, DISPATCHER)


def _features(client: TestClient, p: Planned, kind: str) -> list[dict[str, object]]:
    answer = client.get(f"/console/dispatch/plans/{p.plan_id}.geojson")
    assert answer.status_code == 200
    return [f for f in answer.json()["features"] if f["properties"]["kind"] == kind]


def _publish_form(client: TestClient, token: str, p: Planned, **extra: str) -> Response:
    answer = client.post(
        f"/console/dispatch/plans/{p.plan_id}/publish",
        data={
            "csrf_token": token,
            "depot": p.day.depot_id,
            "date": DAY.isoformat(),
            **extra,
        },
    )
    assert answer.status_code == 303
    page: Response = client.get(answer.headers["location"])
    return page


def _plan_status(runtime: Runtime, p: Planned) -> str:
    with transaction(runtime.read_sessions) as s:
        return views.load_plan(s, p.merchant.id, p.plan_id).status


def test_orders_left_out_are_on_the_map_and_grouped_by_reason(
    client: TestClient, runtime: Runtime, planned: Planned
) -> None:
    """Each order the plan left out is a map point with its reason, address and window, and a
    card under its reason's heading in the panel; the legend and route switches are there."""
    _signed_in(client, runtime, planned)
    points = {f["properties"]["reference"]: f for f in _features(client, planned, "unassigned")}
    assert set(points) == {"HEAVY", "COLD", "EARLY"}
    heavy = points["HEAVY"]
    assert heavy["geometry"] == {"type": "Point", "coordinates": [7.42, 43.74]}
    props = heavy["properties"]
    assert props["reason"] == "over_capacity"
    assert props["reason_label"] == "Too big for every vehicle"
    assert props["address"] == "7 Rue Grimaldi, 98000, Monaco"
    assert props["window"] == "10:00\u201312:00"
    assert points["EARLY"]["properties"]["window"] == "05:00\u201306:00"

    page = client.get(f"/console/dispatch?plan={planned.plan_id}")
    text = html.unescape(page.text)
    groups = re.findall(r'class="unassigned-group" data-reason="([a-z_]+)"', text)
    assert sorted(groups) == ["needs_missing_skill", "outside_every_shift", "over_capacity"]
    heavy_card = text[text.index(f'data-order-id="{planned.extra["HEAVY"]}"') :]
    heavy_card = heavy_card[: heavy_card.index("</li>")]
    assert "7 Rue Grimaldi, 98000, Monaco" in heavy_card
    assert "Window 10:00\u201312:00" in heavy_card
    assert "Too big for every vehicle" in heavy_card
    # The legend, and a show/hide switch per route and for the orders left out.
    assert "Routes and legend" in text and 'id="legend-title">Legend' in text
    assert text.count("data-toggle-route=") == 3
    assert "data-toggle-unassigned" in text and "Not planned (3)" in text


def test_stop_statuses_show_in_the_list_and_on_the_map(
    client: TestClient, runtime: Runtime, planned: Planned
) -> None:
    """After publishing, stops out for delivery, delayed, delivered and failed carry their
    status mark in the map data and a labelled tag in the route list; the others none."""
    token = _signed_in(client, runtime, planned)
    _publish_form(client, token, planned)
    actor = Actor.system()
    with transaction(runtime.sessions) as s:
        route = views.load_plan(s, planned.merchant.id, planned.plan_id).routes[0]
        ids = [stop.order_id for stop in route.stops[:4]]
        orders = [s.get(Order, i) for i in ids]
        for order, path in zip(
            orders,
            (
                [Status.PICKED_UP, Status.OUT_FOR_DELIVERY],
                [Status.DELIVERY_DELAYED],
                [Status.PICKED_UP, Status.OUT_FOR_DELIVERY, Status.DELIVERED],
                [Status.PICKED_UP, Status.OUT_FOR_DELIVERY, Status.DELIVERY_FAILED],
            ),
            strict=True,
        ):
            assert order is not None
            for status in path:
                change_status(s, runtime.clock, order, status, actor=actor)
    stops = {
        f["properties"]["order_id"]: f["properties"] for f in _features(client, planned, "stop")
    }
    marks = [(stops[i]["status_key"], stops[i]["status_label"]) for i in ids]
    assert marks == [
        ("out", "Out for delivery"),
        ("delayed", "Delayed"),
        ("delivered", "Delivered"),
        ("failed", "Failed"),
    ]
    assert len({stops[i]["status_glyph"] for i in ids}) == 4  # a distinct symbol each
    assert sum(1 for props in stops.values() if "status_key" in props) == 4

    page = client.get(f"/console/dispatch?plan={planned.plan_id}").text
    for order_id, (key, label) in zip(ids, marks, strict=True):
        row = page[page.index(f'data-order-id="{order_id}" data-order-status=') :]
        row = row[: row.index("</li>")]
        assert f'<span class="status-tag status-tag--{key}" data-status-mark>{label}</span>' in row


def test_a_stop_that_breaks_a_rule_is_marked_on_the_map(
    client: TestClient, runtime: Runtime, planned: Planned
) -> None:
    """The stop a manual move made break a rule carries the problem in the map data; the
    stops that break nothing carry none."""
    _signed_in(client, runtime, planned)
    _break_a_rule(runtime, planned)
    stops = _features(client, planned, "stop")
    bad = {f["properties"]["reference"]: f["properties"]["problem"] for f in stops}
    assert "needs refrigerated" in bad.pop("COLD")
    assert set(bad.values()) == {""}
    assert {f["properties"]["reference"] for f in _features(client, planned, "unassigned")} == {
        "HEAVY",
        "EARLY",
    }


def test_publishing_a_plan_with_problems_asks_for_confirmation(
    client: TestClient, runtime: Runtime, planned: Planned
) -> None:
    """The publish form says how many problems the plan has and needs a box ticked; without
    it the plan stays a draft and the page says how many; with it the plan is published."""
    token = _signed_in(client, runtime, planned)
    _break_a_rule(runtime, planned)
    page = html.unescape(client.get(f"/console/dispatch?plan={planned.plan_id}").text)
    assert "This plan has\n          <strong>1 problem</strong>" in page
    assert re.search(r'<input type="checkbox" name="confirm_violations" value="1" required', page)
    assert "Publish anyway, with 1 problem" in page

    refused = html.unescape(_publish_form(client, token, planned).text)
    assert "Not published: this plan has 1 problem on its routes." in refused
    assert "tick “Publish anyway, with 1 problem” and publish again" in refused
    assert _plan_status(runtime, planned) == "draft"
    stale = _publish_form(client, token, planned, confirm_violations="2")
    assert "has 1 problem" in html.unescape(stale.text)
    assert _plan_status(runtime, planned) == "draft"

    published = _publish_form(client, token, planned, confirm_violations="1")
    assert "Published: the drivers of" in published.text
    assert _plan_status(runtime, planned) == "published"


def test_a_plan_without_problems_publishes_without_a_question(
    client: TestClient, runtime: Runtime, planned: Planned
) -> None:
    """No problems: no confirmation box, and the form publishes straight away."""
    token = _signed_in(client, runtime, planned)
    page = client.get(f"/console/dispatch?plan={planned.plan_id}").text
    assert 'name="confirm_violations"' not in page
    _publish_form(client, token, planned)
    assert _plan_status(runtime, planned) == "published"


def test_api_publish_confirms_violations_only_when_asked(
    app_client: TestClient, runtime: Runtime, planned: Planned
) -> None:
    """``?confirm_violations=N`` that is not the plan's count is a 409 problem that says how
    many; the right count publishes. Without the parameter the API publishes as before."""
    _break_a_rule(runtime, planned)
    path = f"/v1/plans/{planned.plan_id}/publish"
    headers = planned.merchant.headers
    refused = app_client.post(path, params={"confirm_violations": 0}, headers=headers)
    assert refused.status_code == 409
    body = refused.json()
    assert body["type"].endswith("/violations-unconfirmed")
    assert body["violations"] == 1 and body["confirmed"] == 0
    assert "1 problem" in body["detail"]
    assert _plan_status(runtime, planned) == "draft"
    ok = app_client.post(path, params={"confirm_violations": 1}, headers=headers)
    assert ok.status_code == 200, ok.text
    assert ok.json()["status"] == "published"


def test_api_publish_without_confirmation_is_backwards_compatible(
    app_client: TestClient, runtime: Runtime, planned: Planned
) -> None:
    """An integrator that never heard of ``confirm_violations`` still publishes."""
    _break_a_rule(runtime, planned)
    answer = app_client.post(
        f"/v1/plans/{planned.plan_id}/publish", headers=planned.merchant.headers
    )
    assert answer.status_code == 200, answer.text
    assert _plan_status(runtime, planned) == "published"


def test_manifest_names_driver_vehicle_date_and_start(
    client: TestClient, runtime: Runtime, planned: Planned
) -> None:
    """Every manifest row says whose route it is: the date, driver, vehicle and local time the
    route leaves the depot."""
    _signed_in(client, runtime, planned)
    with transaction(runtime.read_sessions) as s:
        view = views.load_plan_view(s, planned.merchant.id, planned.plan_id)
        route = next(r for r in view.plan.routes if r.stops)
        driver = view.drivers[route.driver_id].name
        vehicle = view.vehicles[route.vehicle_id].name
        assert route.start_at is not None
        start = route.start_at.astimezone(view.tz).strftime("%H:%M")
        route_id, count = route.id, len(route.stops)
    answer = client.get(f"/console/dispatch/routes/{route_id}.csv")
    rows = list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert len(rows) == count
    assert {(r["date"], r["driver"], r["vehicle"], r["route_start"]) for r in rows} == {
        ("2026-11-25", driver, vehicle, start)
    }
    assert re.fullmatch(r"\d\d:\d\d", start)


def test_a_refused_status_change_says_what_may_follow(
    app_client: TestClient, merchant: MerchantCtx, runtime: Runtime
) -> None:
    """Cancelling a delivered order is refused with the statuses it could still take (none:
    delivered is final); a scheduled order asked to become delivered lists its next ones."""
    with transaction(runtime.sessions) as s:
        done = make_order(s, merchant.id, reference="DONE", lat=43.74, lon=7.42)
        waiting = make_order(s, merchant.id, reference="WAIT", lat=43.74, lon=7.42)
        actor = Actor.system()
        for status in (Status.PICKED_UP, Status.OUT_FOR_DELIVERY, Status.DELIVERED):
            change_status(s, runtime.clock, done, status, actor=actor)
        change_status(s, runtime.clock, waiting, Status.SCHEDULED, actor=actor)
        done_id, waiting_id = done.id, waiting.id
    refused = app_client.post(f"/v1/orders/{done_id}/cancel", headers=merchant.headers)
    assert refused.status_code == 409
    assert refused.json()["detail"] == (
        "an order that is delivered cannot become cancelled: delivered is final"
    )
    assert refused.json()["allowed"] == []

    with pytest.raises(InvalidTransition) as caught, transaction(runtime.sessions) as s:
        order = s.get(Order, waiting_id)
        assert order is not None
        change_status(s, runtime.clock, order, Status.DELIVERED, actor=Actor.system())
    assert caught.value.extensions["current"] == "scheduled"
    assert str(caught.value) == (
        "an order that is scheduled cannot become delivered; it can become: pending, "
        "picked up, out for delivery, delivery delayed, cancelled, on hold"
    )
