"""Zones, slot calendars, quotes and reservations through the API (SQLite and PostgreSQL).

The clock stands at Wednesday 25 November 2026, 08:00 in Monaco."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from doorstep.clock import FrozenClock
from doorstep.domain.slots.reservations import run_expire_reservations
from doorstep.runtime import Runtime
from tests.conftest import MerchantCtx
from tests.slots_setup import IN_MONACO, IN_NICE, MONACO_RING, create_depot, monaco_setup


def quote(client: TestClient, merchant: MerchantCtx, **body: Any) -> dict[str, Any]:
    r = client.post(
        "/v1/slots/quote",
        headers=merchant.headers,
        json={"address": IN_MONACO, "from": "2026-11-25", "to": "2026-11-28", **body},
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def reserve(
    client: TestClient, merchant: MerchantCtx, cal_id: str, start: str, **headers: str
) -> Any:
    return client.post(
        "/v1/slots/reservations",
        headers={**merchant.headers, **headers},
        json={"calendar_id": cal_id, "start": start, "address": IN_MONACO},
    )


def zone_problem(client: TestClient, merchant: MerchantCtx, geometry: Any) -> dict[str, Any]:
    depot_id = create_depot(client, merchant)
    r = client.post(
        "/v1/zones",
        headers=merchant.headers,
        json={"depot_id": depot_id, "name": "Bad", "geometry": geometry},
    )
    assert r.status_code == 422, r.text
    return dict(r.json()["errors"][0])


def test_a_self_intersecting_zone_is_refused_with_shapelys_explanation(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """A bow-tie polygon is a 422 that says where it crosses itself."""
    bowtie = [[7.40, 43.72], [7.45, 43.76], [7.45, 43.72], [7.40, 43.76], [7.40, 43.72]]
    error = zone_problem(app_client, merchant, {"type": "Polygon", "coordinates": [bowtie]})
    assert error["field"] == "geometry"
    assert error["code"] == "invalid_shape"
    assert "Self-intersection" in error["message"]


@pytest.mark.parametrize(
    ("geometry", "code", "words"),
    [
        ({"type": "Polygon", "coordinates": [MONACO_RING[:-1]]}, "open_ring", "not closed"),
        (
            {"type": "Polygon", "coordinates": [[[lat, lon] for lon, lat in MONACO_RING]]},
            "lon_lat_order",
            "[lat, lon]",
        ),
        (
            {"type": "Polygon", "coordinates": [[[43.7, 97.0], [43.8, 97.0], [43.8, 98.0]]]},
            "lon_lat_order",
            "swapped",
        ),
        ({"type": "Polygon", "coordinates": []}, "empty", "empty"),
        ({"type": "Point", "coordinates": [7.42, 43.73]}, "wrong_type", "Polygon"),
    ],
    ids=["open-ring", "lat-lon-order", "latitude-beyond-90", "empty", "not-a-polygon"],
)
def test_bad_zone_geometries_are_422_naming_the_problem(
    app_client: TestClient, merchant: MerchantCtx, geometry: Any, code: str, words: str
) -> None:
    """Open rings, [lat, lon] order, empty and non-polygon geometries each get their own code."""
    error = zone_problem(app_client, merchant, geometry)
    assert error["code"] == code
    assert words in error["message"]


def test_a_quote_outside_every_zone_offers_nothing_and_says_why(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """An address in Nice is in no zone: every window is listed as outside_zone."""
    monaco_setup(app_client, merchant)
    body = quote(app_client, merchant, address=IN_NICE)
    assert body["zone_ids"] == []
    assert body["windows"] == []
    assert len(body["unavailable"]) == 8  # 2 windows x 4 days
    assert {u["reason"] for u in body["unavailable"]} == {"outside_zone"}


def test_a_quote_offers_what_can_be_kept_and_explains_the_rest(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """Today is past the 07:00 same-day cut-off, Friday is a blackout date, a window whose one
    place is held is full; the rest are offered with fee, fill and local times."""
    setup = monaco_setup(app_client, merchant, blackout_dates=["2026-11-27"])
    cal_id = setup["calendar"]["id"]
    held = reserve(app_client, merchant, cal_id, "2026-11-26T14:00:00+01:00")
    assert held.status_code == 201, held.text
    body = quote(app_client, merchant)
    reasons = {u["start"]: u["reason"] for u in body["unavailable"]}
    assert reasons == {
        "2026-11-25T10:00:00+01:00": "past_cutoff",
        "2026-11-25T14:00:00+01:00": "past_cutoff",
        "2026-11-26T14:00:00+01:00": "full",
        "2026-11-27T10:00:00+01:00": "blackout",
        "2026-11-27T14:00:00+01:00": "blackout",
    }
    offered = {w["start"]: w for w in body["windows"]}
    assert sorted(offered) == [
        "2026-11-26T10:00:00+01:00",
        "2026-11-28T10:00:00+01:00",
        "2026-11-28T14:00:00+01:00",
    ]
    thursday = offered["2026-11-26T10:00:00+01:00"]
    assert thursday["fee"] == {"amount_cents": 490, "currency": "EUR"}
    assert thursday["fill"]["taken"] == 0 and thursday["fill"]["capacity"] == 2
    assert thursday["service_level"] == "next_day"
    assert offered["2026-11-28T14:00:00+01:00"]["service_level"] == "scheduled"
    assert thursday["plan_checked"] is False  # no plan for Thursday yet


def test_a_reservation_expires_and_gives_its_place_back(
    app_client: TestClient, merchant: MerchantCtx, runtime: Runtime, clock: FrozenClock
) -> None:
    """A hold lasts 10 minutes; meanwhile the one-place window is full; after it the worker
    job expires it, the window is offered again and an order can no longer confirm it."""
    setup = monaco_setup(app_client, merchant)
    cal_id = setup["calendar"]["id"]
    start = "2026-11-26T14:00:00+01:00"
    first = reserve(app_client, merchant, cal_id, start)
    assert first.status_code == 201, first.text
    assert first.json()["reserved_until"] == "2026-11-25T08:10:00+01:00"
    assert first.headers["Location"] == f"/v1/slots/reservations/{first.json()['id']}"
    second = reserve(app_client, merchant, cal_id, start)
    assert second.status_code == 409
    assert second.json()["type"].endswith("slot-unavailable")

    clock.advance(timedelta(minutes=11))
    assert run_expire_reservations(runtime) == 1
    res = app_client.get(f"/v1/slots/reservations/{first.json()['id']}", headers=merchant.headers)
    assert res.json()["status"] == "expired"
    offered = [w["start"] for w in quote(app_client, merchant)["windows"]]
    assert start in offered
    order = app_client.post(
        "/v1/orders",
        headers=merchant.headers,
        json={**order_body("SO-EXPIRED"), "reservation_id": first.json()["id"]},
    )
    assert order.status_code == 409
    assert "expired" in order.json()["detail"]


def order_body(reference: str) -> dict[str, Any]:
    return {
        "reference": reference,
        "recipient": {"name": "Ada Lovelace", "phone": "+33612345678"},
        "address": {
            "line1": "1 Avenue de la Costa",
            "city": "Monaco",
            "country": "MC",
            **IN_MONACO,
        },
    }


def test_an_order_confirms_its_reservation_and_takes_its_window(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """POST /v1/orders with reservation_id gets the reserved window and service level (not
    for another address); the reservation is confirmed (a DELETE is then refused) and
    cancelling the order frees it."""
    setup = monaco_setup(app_client, merchant)
    cal_id = setup["calendar"]["id"]
    start = "2026-11-28T14:00:00+01:00"
    key = {"Idempotency-Key": "rsv-1"}
    res = reserve(app_client, merchant, cal_id, start, **key)
    again = reserve(app_client, merchant, cal_id, start, **key)
    assert again.json()["id"] == res.json()["id"]
    assert again.headers.get("Idempotent-Replayed") == "true"
    elsewhere = order_body("SO-ELSEWHERE")
    elsewhere["address"] = {**elsewhere["address"], "lat": 43.7285, "lon": 7.4150}
    wrong = app_client.post(
        "/v1/orders",
        headers=merchant.headers,
        json={**elsewhere, "reservation_id": res.json()["id"]},
    )
    assert wrong.status_code == 422, wrong.text  # reserved for another address (1.7 km away)
    assert wrong.json()["errors"][0]["code"] == "address_mismatch"
    unknown = app_client.post(
        "/v1/orders",
        headers=merchant.headers,
        json={**order_body("SO-UNKNOWN"), "reservation_id": "rsv_unknown"},
    )
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "reservation_id"
    order = app_client.post(
        "/v1/orders",
        headers=merchant.headers,
        json={**order_body("SO-SAT"), "reservation_id": res.json()["id"]},
    )
    assert order.status_code == 201, order.text
    assert order.json()["window"]["start"].startswith("2026-11-28T14:00:00")
    assert order.json()["service_level"] == "scheduled"
    rid = res.json()["id"]
    got = app_client.get(f"/v1/slots/reservations/{rid}", headers=merchant.headers).json()
    assert got["status"] == "confirmed" and got["order_id"] == order.json()["id"]
    refused = app_client.delete(f"/v1/slots/reservations/{rid}", headers=merchant.headers)
    assert refused.status_code == 409
    assert reserve(app_client, merchant, cal_id, start).status_code == 409  # capacity 1

    cancel = app_client.post(
        f"/v1/orders/{order.json()['id']}/cancel", headers=merchant.headers, json={}
    )
    assert cancel.status_code == 200, cancel.text
    assert reserve(app_client, merchant, cal_id, start).status_code == 201


def test_a_window_edited_while_reservations_are_held(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """Lowering a window's capacity below what is held keeps both holds (they can still be
    confirmed) but sells no more: the quote shows it full at 2 of 1."""
    setup = monaco_setup(app_client, merchant)
    cal = setup["calendar"]
    start = "2026-11-26T10:00:00+01:00"
    holds = [reserve(app_client, merchant, cal["id"], start) for _ in range(2)]
    assert [h.status_code for h in holds] == [201, 201]
    windows = cal["windows"]
    windows[0]["capacity"] = 1
    windows[0]["fee_cents"] = 990
    r = app_client.patch(
        f"/v1/slot-calendars/{cal['id']}", headers=merchant.headers, json={"windows": windows}
    )
    assert r.status_code == 200, r.text
    assert reserve(app_client, merchant, cal["id"], start).status_code == 409
    body = quote(app_client, merchant, **{"from": "2026-11-26", "to": "2026-11-26"})
    full = next(u for u in body["unavailable"] if u["start"] == start)
    assert full["reason"] == "full"
    for n, hold in enumerate(holds):
        order = app_client.post(
            "/v1/orders",
            headers=merchant.headers,
            json={**order_body(f"SO-HELD-{n}"), "reservation_id": hold.json()["id"]},
        )
        assert order.status_code == 201, order.text
    fee = app_client.get(
        f"/v1/slots/reservations/{holds[0].json()['id']}", headers=merchant.headers
    ).json()["fee"]
    assert fee["amount_cents"] == 490  # the price the customer saw


def test_another_merchants_calendar_is_404(
    app_client: TestClient, merchant: MerchantCtx, make_merchant: Any
) -> None:
    """Calendars, zones and reservations are scoped to their merchant."""
    setup = monaco_setup(app_client, merchant)
    other = make_merchant("Other Shop")
    cal_id = setup["calendar"]["id"]
    assert app_client.get(f"/v1/slot-calendars/{cal_id}", headers=other.headers).status_code == 404
    r = reserve(app_client, other, cal_id, "2026-11-26T10:00:00+01:00")
    assert r.status_code == 404
    zone = app_client.get(f"/v1/zones/{setup['zone_id']}", headers=other.headers)
    assert zone.status_code == 404


def test_vehicle_minutes_cap_a_window_before_its_stops_do(
    app_client: TestClient, merchant: MerchantCtx, settings: Any
) -> None:
    """A window of 10 places but only enough vehicle-minutes for two stops' service time
    sells two; the quote then says its vehicle-minutes are booked."""
    per_stop = -(-settings.default_service_time_s // 60)  # minutes, rounded up
    setup = monaco_setup(
        app_client,
        merchant,
        windows=[
            {
                "days": ["thu"],
                "start": "10:00",
                "end": "12:00",
                "capacity": 10,
                "vehicle_minutes": 2 * per_stop,
            }
        ],
    )
    cal_id = setup["calendar"]["id"]
    start = "2026-11-26T10:00:00+01:00"
    assert [reserve(app_client, merchant, cal_id, start).status_code for _ in range(3)] == [
        201,
        201,
        409,
    ]
    body = quote(app_client, merchant, **{"from": "2026-11-26", "to": "2026-11-26"})
    [full] = body["unavailable"]
    assert full["reason"] == "full"
    assert "vehicle-minutes" in full["detail"]


def test_moving_a_confirmed_orders_window_frees_its_place(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """A merchant's PATCH that moves the window of an order holding the one place of a window
    gives that place back: another customer can reserve it."""
    setup = monaco_setup(app_client, merchant)
    cal_id = setup["calendar"]["id"]
    start = "2026-11-26T14:00:00+01:00"
    res = reserve(app_client, merchant, cal_id, start)
    order = app_client.post(
        "/v1/orders",
        headers=merchant.headers,
        json={**order_body("SO-MOVED"), "reservation_id": res.json()["id"]},
    )
    assert order.status_code == 201, order.text
    assert reserve(app_client, merchant, cal_id, start).status_code == 409
    moved = app_client.patch(
        f"/v1/orders/{order.json()['id']}",
        headers=merchant.headers,
        json={"window": {"start": "2026-11-27T09:00:00+01:00", "end": "2026-11-27T11:00:00+01:00"}},
    )
    assert moved.status_code == 200, moved.text
    assert reserve(app_client, merchant, cal_id, start).status_code == 201


def test_without_a_plan_a_window_no_shift_covers_is_unreachable(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """Thursday has one shift, 08:00-12:00, and no plan yet: its 10-12 window is offered (not
    checked against a plan), its 14-16 window is unreachable; Saturday, with no shift set yet,
    is offered on its counter alone."""
    setup = monaco_setup(app_client, merchant)
    vehicle = app_client.post(
        "/v1/vehicles",
        headers=merchant.headers,
        json={"name": "Van 1", "capacity_weight_kg": 500, "capacity_parcels": 80},
    ).json()["id"]
    driver = app_client.post(
        "/v1/drivers", headers=merchant.headers, json={"name": "Marco", "device_id": "dev-slots"}
    ).json()["id"]
    shift = app_client.post(
        "/v1/shifts",
        headers=merchant.headers,
        json={
            "driver_id": driver,
            "vehicle_id": vehicle,
            "depot_id": setup["depot_id"],
            "start_at": "2026-11-26T08:00:00+01:00",
            "end_at": "2026-11-26T12:00:00+01:00",
        },
    )
    assert shift.status_code == 201, shift.text
    body = quote(app_client, merchant, **{"from": "2026-11-26", "to": "2026-11-28"})
    offered = {w["start"]: w["plan_checked"] for w in body["windows"]}
    assert offered["2026-11-26T10:00:00+01:00"] is False
    assert "2026-11-28T14:00:00+01:00" in offered
    late = next(u for u in body["unavailable"] if u["start"] == "2026-11-26T14:00:00+01:00")
    assert late["reason"] == "unreachable"
    assert late["detail"] == "no driver's shift covers 14:00-16:00 that day"
