"""A recipient who was out rebooks: after a failed attempt the order can be moved to another
window (the tracking page's reschedule), and the failed stop stays on the driver's route as
history instead of refusing the change with "the stop is made or under way"."""

from __future__ import annotations

from fastapi.testclient import TestClient

from doorstep.db.engine import transaction
from doorstep.domain.dispatch.models import Stop
from doorstep.runtime import Runtime
from tests.conftest import MerchantCtx
from tests.driving import image_bytes, publish_day
from tests.slots_setup import EVERY_DAY, monaco_setup


def test_a_failed_attempt_can_be_rebooked_and_its_stop_stays_as_history(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    day = publish_day(app_client, runtime, merchant)
    windows = [{"days": EVERY_DAY, "start": "10:00", "end": "12:00", "capacity": 20}]
    cal = monaco_setup(app_client, merchant, windows=windows)["calendar"]
    started = app_client.post(f"/v1/routes/{day.route['id']}/start", headers=merchant.headers)
    assert started.status_code == 200, started.text
    stop = day.route["stops"][0]
    failed = app_client.post(
        f"/v1/stops/{stop['id']}/fail",
        data={"reason": "consignee_not_home"},
        files={"photo": ("door.jpg", image_bytes(), "image/jpeg")},
        headers=merchant.headers,
    )
    assert failed.status_code == 200, failed.text
    moved = app_client.post(
        f"/v1/orders/{stop['order_id']}/reschedule",
        headers=merchant.headers,
        json={"calendar_id": cal["id"], "start": "2026-11-26T10:00:00+01:00"},
    )
    assert moved.status_code == 200, moved.text
    order = app_client.get(f"/v1/orders/{stop['order_id']}", headers=merchant.headers).json()
    assert order["window"]["start"] == "2026-11-26T10:00:00+01:00"
    assert order["status"] == "pending"
    with transaction(runtime.sessions) as s:
        kept = s.get(Stop, stop["id"])
        assert kept is not None and kept.status == "failed"
