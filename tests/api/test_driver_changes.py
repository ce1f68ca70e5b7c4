"""What recipients change reaches the driver: redirects (neighbour, safe place, pickup point),
holds and new instructions, in the driver endpoints' JSON and on the driver app's stop cards."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from doorstep.domain.dispatch.recipient_changes import recipient_changes
from doorstep.domain.orders.models import Order
from doorstep.runtime import Runtime
from tests.conftest import MerchantCtx
from tests.console_session import csrf_of
from tests.driving import Published, publish_day

MONACO = ZoneInfo("Europe/Monaco")


@pytest.fixture
def day(client: TestClient, runtime: Runtime, merchant: MerchantCtx) -> Published:
    return publish_day(client, runtime, merchant)


def _orders(day: Published) -> list[str]:
    """The route's order ids in stop order, the PIN order left out."""
    return [s["order_id"] for s in day.route["stops"] if s["order_id"] != day.pin_order_id]


def _post(client: TestClient, day: Published, path: str, body: dict[str, Any]) -> Any:
    resp = client.post(path, json=body, headers=day.merchant.headers)
    assert resp.status_code == 200, resp.text
    return resp.json()


def _route_stops(client: TestClient, day: Published) -> dict[str, dict[str, Any]]:
    resp = client.get(f"/v1/drivers/{day.driver_id}/route", headers=day.merchant.headers)
    assert resp.status_code == 200, resp.text
    [route] = resp.json()["routes"]
    return {s["order_id"]: s for s in route["stops"]}


def _sign_in_driver(client: TestClient, day: Published) -> None:
    issued = client.post(f"/v1/drivers/{day.driver_id}/login-link", headers=day.merchant.headers)
    path = issued.json()["url"].removeprefix("http://127.0.0.1:8000")
    page = client.get(path)
    assert client.post(path, data={"csrf_token": csrf_of(page)}).status_code == 303


def test_redirects_and_new_instructions_are_in_the_driver_route_json(
    client: TestClient, day: Published
) -> None:
    """A neighbour redirect (name, house number), a safe place with photo consent and new
    instructions show on their stops in /v1/drivers/{id}/route, in the route answered by
    /start and in a stop action's answer; untouched stops carry no change."""
    neighbour, safe, told = _orders(day)[:3]
    _post(
        client,
        day,
        f"/v1/orders/{neighbour}/redirect",
        {"kind": "neighbour", "neighbour": {"name": "Mme Curie", "house_number": "3"}},
    )
    _post(
        client,
        day,
        f"/v1/orders/{safe}/redirect",
        {
            "kind": "safe_place",
            "safe_place": {"place": "behind the blue gate", "photo_consent": True},
        },
    )
    _post(client, day, f"/v1/orders/{told}/instructions", {"instructions": "Ring twice"})

    stops = _route_stops(client, day)
    assert stops[neighbour]["recipient_change"] == {
        "redirect": {
            "kind": "neighbour",
            "name": "Mme Curie",
            "house_number": "3",
            "place": None,
            "photo_consent": None,
            "pickup_point_id": None,
            "address": None,
        },
        "do_not_deliver": False,
        "held_until": None,
        "instructions_changed_at": None,
    }
    safe_change = stops[safe]["recipient_change"]["redirect"]
    assert safe_change["kind"] == "safe_place"
    assert safe_change["place"] == "behind the blue gate" and safe_change["photo_consent"] is True
    told_change = stops[told]["recipient_change"]
    assert told_change["redirect"] is None and told_change["instructions_changed_at"]
    assert told_change["instructions_changed_at"].endswith("+01:00")  # the merchant's time
    assert stops[day.pin_order_id]["recipient_change"] is None

    started = client.post(f"/v1/routes/{day.route['id']}/start", headers=day.merchant.headers)
    assert started.status_code == 200, started.text
    by_order = {s["order"]["id"]: s for s in started.json()["stops"]}
    assert by_order[neighbour]["recipient_change"]["redirect"]["name"] == "Mme Curie"
    assert by_order[day.pin_order_id]["recipient_change"] is None
    stop_id = stops[neighbour]["id"]
    arrived = client.post(f"/v1/stops/{stop_id}/arrive", headers=day.merchant.headers)
    assert arrived.status_code == 200, arrived.text
    assert arrived.json()["recipient_change"]["redirect"]["house_number"] == "3"


def test_a_recipients_hold_takes_the_stop_off_and_a_merchants_hold_says_do_not_deliver(
    client: TestClient, day: Published
) -> None:
    """A recipient holding the delivery while away takes the stop off the driver's route; an
    order the merchant puts on hold after the route started stays on it, marked do not
    deliver (and the driver app hides its Deliver button)."""
    away, stopped = _orders(day)[:2]
    _post(client, day, f"/v1/orders/{away}/hold", {"until": "2026-11-28"})
    stops = _route_stops(client, day)
    assert away not in stops

    started = client.post(f"/v1/routes/{day.route['id']}/start", headers=day.merchant.headers)
    assert started.status_code == 200, started.text
    held = client.post(
        f"/v1/orders/{stopped}/status",
        json={"status": "on_hold", "reason": "delivery_exception_hold"},
        headers=day.merchant.headers,
    )
    assert held.status_code == 200, held.text
    change = _route_stops(client, day)[stopped]["recipient_change"]
    assert change["do_not_deliver"] is True and change["redirect"] is None

    _sign_in_driver(client, day)
    page = client.get("/driver")
    stop_id = stops[stopped]["id"]
    card = page.text.split(f'id="stop-{stop_id}"')[1].split("data-stop-msg")[0]
    assert 'data-do-not-deliver="true"' in card
    assert "Do not deliver: this delivery is on hold." in card
    assert f'data-url="/driver/stops/{stop_id}/complete" hidden>' in card


def test_the_driver_app_shows_the_new_destination_and_marks_new_instructions(
    client: TestClient, day: Published
) -> None:
    """The stop card says to leave the parcel with the neighbour (name, house number), its
    navigation link carries the house number, and changed instructions are highlighted with
    when they changed; /driver/state's stamp changes with the news so the page reloads."""
    _sign_in_driver(client, day)
    before = client.get("/driver/state").json()["stamp"]
    assert client.get("/driver/state").json()["stamp"] == before
    neighbour, told = _orders(day)[:2]
    _post(
        client,
        day,
        f"/v1/orders/{neighbour}/redirect",
        {"kind": "neighbour", "neighbour": {"name": "Mme Curie", "house_number": "3"}},
    )
    _post(client, day, f"/v1/orders/{told}/instructions", {"instructions": "Ring twice"})
    assert client.get("/driver/state").json()["stamp"] != before

    page = client.get("/driver")
    assert page.status_code == 200
    assert "Changed by the recipient" in page.text
    assert "Leave it with the neighbour Mme Curie, house number 3." in page.text
    assert "%283%29" in page.text  # the geo: label names the house number: "(3)"
    assert "<mark>Ring twice</mark>" in page.text
    assert "changed by the recipient at 08:00" in page.text
    assert f'data-stamp="{client.get("/driver/state").json()["stamp"]}"' in page.text


def test_a_pickup_point_redirect_names_the_point_for_the_driver(
    client: TestClient, runtime: Runtime, day: Published
) -> None:
    """A redirect to a pickup point gives its name and address (the order's address is now
    the point's, so the stop's navigation leads there once the stop is planned again)."""
    order_id = _orders(day)[0]
    point = client.post(
        "/v1/pickup-points",
        headers=day.merchant.headers,
        json={
            "name": "Tabac du Port",
            "kind": "shop",
            "address": {
                "line1": "4 Quai Albert Ier",
                "city": "Monaco",
                "country": "MC",
                "lat": 43.7350,
                "lon": 7.4215,
            },
        },
    )
    assert point.status_code == 201, point.text
    _post(
        client,
        day,
        f"/v1/orders/{order_id}/redirect",
        {"kind": "pickup_point", "pickup_point_id": point.json()["id"]},
    )
    with runtime.sessions() as s:
        order = s.get(Order, order_id)
        assert order is not None
        change = recipient_changes(s, day.merchant.id, [order], MONACO)[order_id]
        assert (order.lat, order.lon) == (43.7350, 7.4215)
    assert change.redirect is not None
    assert change.redirect.kind == "pickup_point"
    assert change.redirect.name == "Tabac du Port"
    assert change.redirect.address == "4 Quai Albert Ier, Monaco"
    assert change.redirect.pickup_point_id == point.json()["id"]
