"""Recipient self-service: reschedule (also from the tracking page's domain call), redirect,
hold while away, instructions, and the cut-off after which each is refused. The clock stands
at Wednesday 25 November 2026, 08:00 in Monaco; orders are created through the API."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from doorstep.clock import FrozenClock
from doorstep.db.engine import transaction
from doorstep.domain.accounts.models import Merchant
from doorstep.domain.orders.models import DeliveryEvent, Order
from doorstep.domain.slots.choices import redirects_for
from doorstep.domain.slots.schemas import RescheduleIn
from doorstep.domain.slots.selfservice import (
    recipient_change,
    release_holds,
    run_release_holds,
    self_service_state,
)
from doorstep.runtime import Runtime
from tests.conftest import MerchantCtx
from tests.slots_setup import EVERY_DAY, IN_MONACO, monaco_setup

WINDOWS = [
    {"days": EVERY_DAY, "start": "10:00", "end": "12:00", "capacity": 3},
    {"days": ["sat"], "start": "09:00", "end": "13:00", "capacity": 3, "fee_cents": 700},
]


def new_order(client: TestClient, merchant: MerchantCtx, ref: str = "SO-1") -> dict[str, Any]:
    r = client.post(
        "/v1/orders",
        headers=merchant.headers,
        json={
            "reference": ref,
            "recipient": {"name": "Ada Lovelace", "phone": "+33612345678"},
            "address": {
                "line1": "1 Avenue de la Costa",
                "city": "Monaco",
                "country": "MC",
                **IN_MONACO,
            },
            "window": {"start": "2026-11-26T10:00:00+01:00", "end": "2026-11-26T12:00:00+01:00"},
            "instructions": "Door code 1234",
        },
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def events(runtime: Runtime, order_id: str, type_: str) -> list[DeliveryEvent]:
    with runtime.sessions() as s:
        return list(
            s.scalars(
                select(DeliveryEvent).where(
                    DeliveryEvent.order_id == order_id, DeliveryEvent.type == type_
                )
            )
        )


def test_a_recipient_reschedules_to_a_saturday_window_from_the_tracking_page(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """The tracking page's state offers Saturday 09-13; recipient_change moves the order
    there, window_sequence grows, and order.rescheduled is logged by the recipient."""
    cal = monaco_setup(app_client, merchant, windows=WINDOWS)["calendar"]
    order = new_order(app_client, merchant)
    with transaction(runtime.sessions) as s:
        row = s.get(Order, order["id"])
        assert row is not None
        state = self_service_state(s, runtime.clock, runtime.settings, row)
        assert state.open and state.closed_reason is None
        saturday = next(w for w in state.windows if w.date == date(2026, 11, 28))
        assert saturday.fee.amount_cents == 700
        starts = [w.start.isoformat() for w in state.windows]
        assert "2026-11-26T10:00:00+01:00" not in starts  # the current window is not offered
        recipient_change(
            s,
            runtime.clock,
            runtime.settings,
            row,
            RescheduleIn(calendar_id=cal["id"], start=saturday.start),
        )
    got = app_client.get(f"/v1/orders/{order['id']}", headers=merchant.headers).json()
    assert got["window"]["start"] == "2026-11-28T09:00:00+01:00"
    [event] = events(runtime, order["id"], "order.rescheduled")
    assert event.actor_type == "recipient"
    assert event.data["by"] == "recipient"
    assert event.data["window_sequence"] == 1
    assert event.data["previous_window_start"].startswith("2026-11-26T09:00:00")


def test_a_reschedule_after_the_driver_set_off_is_refused_clearly(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """Before, the delivery options list Saturday; once out for delivery, a reschedule is a
    409 self-service-closed that says why, and the options offer nothing."""
    cal = monaco_setup(app_client, merchant, windows=WINDOWS)["calendar"]
    order = new_order(app_client, merchant)
    options = app_client.get(
        f"/v1/orders/{order['id']}/delivery-options", headers=merchant.headers
    ).json()
    assert options["open"] is True
    assert "2026-11-28T09:00:00+01:00" in [w["start"] for w in options["windows"]]
    for status in ("picked_up", "out_for_delivery"):
        r = app_client.post(
            f"/v1/orders/{order['id']}/status", headers=merchant.headers, json={"status": status}
        )
        assert r.status_code == 200, r.text
    r = app_client.post(
        f"/v1/orders/{order['id']}/reschedule",
        headers=merchant.headers,
        json={"calendar_id": cal["id"], "start": "2026-11-28T09:00:00+01:00"},
    )
    assert r.status_code == 409
    assert r.json()["type"].endswith("self-service-closed")
    assert "the driver is already on the way" in r.json()["detail"]
    options = app_client.get(
        f"/v1/orders/{order['id']}/delivery-options", headers=merchant.headers
    ).json()
    assert options["open"] is False
    assert options["closed_reason"] == "the driver is already on the way with your parcel"
    assert options["windows"] == []


def test_the_merchants_cutoff_before_the_window_applies(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """With self_service_cutoff_minutes = 1560, an order whose window starts in 26 hours (1560 min)
    can no longer change its instructions; with 1559 it still can."""
    monaco_setup(app_client, merchant, windows=WINDOWS)
    order = new_order(app_client, merchant)
    with transaction(runtime.sessions) as s:
        row = s.get(Merchant, merchant.id)
        assert row is not None
        row.config = {**row.config, "slots": {"self_service_cutoff_minutes": 1560}}
    url = f"/v1/orders/{order['id']}/instructions"
    r = app_client.post(url, headers=merchant.headers, json={"instructions": "Ring twice"})
    assert r.status_code == 409
    assert "changes close 1560 minutes before the delivery window" in r.json()["detail"]
    with transaction(runtime.sessions) as s:
        row = s.get(Merchant, merchant.id)
        assert row is not None
        row.config = {**row.config, "slots": {"self_service_cutoff_minutes": 1559}}
    r = app_client.post(url, headers=merchant.headers, json={"instructions": "Ring twice"})
    assert r.status_code == 200, r.text
    assert r.json()["instructions"] == "Ring twice"
    [event] = events(runtime, order["id"], "order.instructions_changed")
    assert event.data == {"instructions": "Ring twice"}


def test_redirects_to_a_neighbour_a_safe_place_and_a_pickup_point(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """A neighbour is recorded with name and house number; a safe place needs photo consent;
    a pickup point becomes the delivery address. Each redirect logs order.redirected, and the
    driver's stop list can read where the parcel goes."""
    monaco_setup(app_client, merchant, windows=WINDOWS)
    order = new_order(app_client, merchant)
    url = f"/v1/orders/{order['id']}/redirect"
    r = app_client.post(
        url,
        headers=merchant.headers,
        json={"kind": "neighbour", "neighbour": {"name": "Mme Curie", "house_number": "3"}},
    )
    assert r.status_code == 200, r.text
    assert r.json()["redirect"] == {"kind": "neighbour", "name": "Mme Curie", "house_number": "3"}
    r = app_client.post(
        url,
        headers=merchant.headers,
        json={"kind": "safe_place", "safe_place": {"place": "porch", "photo_consent": False}},
    )
    assert r.status_code == 422
    point = app_client.post(
        "/v1/pickup-points",
        headers=merchant.headers,
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
    r = app_client.post(
        url,
        headers=merchant.headers,
        json={"kind": "pickup_point", "pickup_point_id": point.json()["id"]},
    )
    assert r.status_code == 200, r.text
    got = app_client.get(f"/v1/orders/{order['id']}", headers=merchant.headers).json()
    assert got["address"]["line1"] == "4 Quai Albert Ier"
    kinds = [e.data["kind"] for e in events(runtime, order["id"], "order.redirected")]
    assert kinds == ["neighbour", "pickup_point"]
    with runtime.sessions() as s:
        for_driver = redirects_for(s, merchant.id, [order["id"]])
    assert for_driver[order["id"]]["kind"] == "pickup_point"
    assert for_driver[order["id"]]["name"] == "Tabac du Port"


def test_a_hold_while_away_ends_when_its_date_comes(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx, clock: FrozenClock
) -> None:
    """Holding until 1 December puts the order on hold and frees its window; on that day the
    hold job sends it back to pending. A hold beyond 30 days is refused."""
    monaco_setup(app_client, merchant, windows=WINDOWS)
    order = new_order(app_client, merchant)
    url = f"/v1/orders/{order['id']}/hold"
    too_long = app_client.post(url, headers=merchant.headers, json={"until": "2027-01-30"})
    assert too_long.status_code == 422
    r = app_client.post(url, headers=merchant.headers, json={"until": "2026-12-01"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "on_hold"
    assert r.json()["held_until"] == "2026-12-01"
    [event] = events(runtime, order["id"], "order.held")
    assert event.data == {"until": "2026-12-01"}
    clock.advance(timedelta(days=5))
    with transaction(runtime.sessions) as s:
        assert release_holds(s, clock) == 0
    clock.advance(timedelta(days=1))
    assert run_release_holds(runtime) == 1
    got = app_client.get(f"/v1/orders/{order['id']}", headers=merchant.headers).json()
    assert got["status"] == "pending"
