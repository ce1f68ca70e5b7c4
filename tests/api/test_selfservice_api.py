"""Self-service through the merchant's API as an integrator's front end uses it: every change
(reschedule, the three redirects, hold, instructions) refused after the driver set off with
the same clear problem, and ``Idempotency-Key`` on the changes, so a retry after a lost answer
gets the first answer instead of "already in that window". The clock stands at Wednesday
25 November 2026, 08:00 in Monaco; the order's window is Thursday 10:00-12:00."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from doorstep.runtime import Runtime
from tests.api.test_selfservice import WINDOWS, events, new_order
from tests.conftest import MerchantCtx
from tests.slots_setup import monaco_setup

SATURDAY = "2026-11-28T09:00:00+01:00"


def pickup_point(client: TestClient, merchant: MerchantCtx) -> str:
    r = client.post(
        "/v1/pickup-points",
        headers=merchant.headers,
        json={
            "name": "Tabac du Port",
            "kind": "shop",
            "address": {
                "line1": "3 Quai Albert Ier",
                "city": "Monaco",
                "country": "MC",
                "lat": 43.7351,
                "lon": 7.4216,
            },
        },
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


CHANGES: dict[str, tuple[str, dict[str, Any]]] = {
    "reschedule": ("reschedule", {"start": SATURDAY}),
    "neighbour": (
        "redirect",
        {"kind": "neighbour", "neighbour": {"name": "Mme Riviera", "house_number": "3"}},
    ),
    "safe place": (
        "redirect",
        {"kind": "safe_place", "safe_place": {"place": "Behind the gate", "photo_consent": True}},
    ),
    "pickup point": ("redirect", {"kind": "pickup_point"}),
    "hold": ("hold", {"until": "2026-12-02"}),
    "instructions": ("instructions", {"instructions": "Ring twice"}),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_every_change_after_the_driver_set_off_is_refused_with_a_clear_message(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx, change: str
) -> None:
    """The same change is accepted before the driver sets off (on another order) and, once
    the parcel is out for delivery, answered 409 self-service-closed with the reason, and
    nothing about the order changes."""
    cal = monaco_setup(app_client, merchant, windows=WINDOWS)["calendar"]
    point = pickup_point(app_client, merchant)
    action, body = CHANGES[change]
    body = {**body}
    if action == "reschedule":
        body["calendar_id"] = cal["id"]
    if body.get("kind") == "pickup_point":
        body["pickup_point_id"] = point
    before = new_order(app_client, merchant, ref="SO-EARLY")
    ok = app_client.post(f"/v1/orders/{before['id']}/{action}", headers=merchant.headers, json=body)
    assert ok.status_code == 200, ok.text

    order = new_order(app_client, merchant)
    for status in ("picked_up", "out_for_delivery"):
        r = app_client.post(
            f"/v1/orders/{order['id']}/status", headers=merchant.headers, json={"status": status}
        )
        assert r.status_code == 200, r.text
    refused = app_client.post(
        f"/v1/orders/{order['id']}/{action}", headers=merchant.headers, json=body
    )
    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert problem["type"].endswith("self-service-closed")
    assert problem["title"] == "Too late to change this delivery"
    assert problem["detail"] == (
        "This delivery can no longer be changed: the driver is already on the way with your parcel."
    )
    after = app_client.get(f"/v1/orders/{order['id']}", headers=merchant.headers).json()
    assert after["status"] == "out_for_delivery"
    assert after["window"] == order["window"]
    assert after["instructions"] == order["instructions"]
    assert after["address"] == order["address"]
    choice = app_client.get(
        f"/v1/orders/{order['id']}/delivery-options", headers=merchant.headers
    ).json()["choice"]
    assert choice["redirect"] is None and choice["held_until"] is None


def test_a_reschedule_retried_with_its_idempotency_key_gets_the_first_answer(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """The same key and body replays the first 200 (one order.rescheduled, one place taken);
    the same key with another body is a 422; without a key the retry is the usual 422."""
    cal = monaco_setup(app_client, merchant, windows=WINDOWS)["calendar"]
    order = new_order(app_client, merchant)
    url = f"/v1/orders/{order['id']}/reschedule"
    body = {"calendar_id": cal["id"], "start": SATURDAY}
    key = {**merchant.headers, "Idempotency-Key": "resched-1"}
    first = app_client.post(url, headers=key, json=body)
    assert first.status_code == 200, first.text
    again = app_client.post(url, headers=key, json=body)
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert len(events(runtime, order["id"], "order.rescheduled")) == 1
    other = app_client.post(url, headers=key, json={**body, "start": "2026-11-27T10:00:00+01:00"})
    assert other.status_code == 422, other.text
    bare = app_client.post(url, headers=merchant.headers, json=body)
    assert bare.status_code == 422 and bare.json()["errors"][0]["code"] == "same_window"
    options = app_client.get(
        f"/v1/orders/{order['id']}/delivery-options", headers=merchant.headers
    ).json()
    assert all(w["start"] != SATURDAY for w in options["windows"])  # its current window
    quote = app_client.post(
        "/v1/slots/quote",
        headers=merchant.headers,
        json={
            "address": {"lat": 43.7405, "lon": 7.4263},
            "parcels": [{"weight_kg": 1}],
            "date_from": "2026-11-28",
            "date_to": "2026-11-28",
        },
    ).json()
    [saturday] = [w for w in quote["windows"] if w["start"] == SATURDAY]
    assert saturday["fill"]["taken"] == 1, "the retry took no second place"


def test_a_redirect_retried_with_its_idempotency_key_logs_one_event(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """A neighbour redirect sent twice with one key is applied once and answered the same."""
    monaco_setup(app_client, merchant, windows=WINDOWS)
    order = new_order(app_client, merchant)
    url = f"/v1/orders/{order['id']}/redirect"
    body = {"kind": "neighbour", "neighbour": {"name": "Mme Riviera", "house_number": "3"}}
    key = {**merchant.headers, "Idempotency-Key": "redirect-1"}
    first = app_client.post(url, headers=key, json=body)
    assert first.status_code == 200, first.text
    assert first.json()["redirect"]["kind"] == "neighbour"
    again = app_client.post(url, headers=key, json=body)
    assert again.status_code == 200 and again.json() == first.json()
    assert len(events(runtime, order["id"], "order.redirected")) == 1
