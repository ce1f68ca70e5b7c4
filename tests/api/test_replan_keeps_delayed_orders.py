"""Re-planning keeps a delayed delivery on the vehicle that carries it: ``delivery_delayed``
is still on board, like ``out_for_delivery``, even when its window can no longer be met
(before, the re-plan left it out and nobody would deliver the parcel in the van)."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi.testclient import TestClient

from doorstep.clock import FrozenClock
from doorstep.runtime import Runtime
from tests.conftest import MerchantCtx
from tests.driving import publish_day


def test_a_delayed_order_stays_on_its_route_after_a_replan(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx, clock: FrozenClock
) -> None:
    day = publish_day(app_client, runtime, merchant)
    h = merchant.headers
    started = app_client.post(f"/v1/routes/{day.route['id']}/start", headers=h)
    assert started.status_code == 200, started.text
    late = day.route["stops"][-1]
    delayed = app_client.post(
        f"/v1/orders/{late['order_id']}/status", json={"status": "delivery_delayed"}, headers=h
    )
    assert delayed.status_code == 200, delayed.text
    # Past the window's end: the stop can only be late now.
    clock.set(datetime.fromisoformat(late["window"]["end"]) + timedelta(minutes=10))
    replanned = app_client.post(
        f"/v1/plans/{day.plan['id']}/replan",
        json={"time_limit_s": 60, "max_iterations": 200},
        headers=h,
    )
    assert replanned.status_code == 201, replanned.text
    new = replanned.json()
    route = next(r for r in new["routes"] if r["shift_id"] == day.route["shift_id"])
    assert late["order_id"] in [s["order_id"] for s in route["stops"]], new["unassigned"]
    assert late["order_id"] not in [u["order_id"] for u in new["unassigned"]]
