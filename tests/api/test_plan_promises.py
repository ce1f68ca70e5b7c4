"""A plan keeps the configured buffer before each window's end where the day allows, and says
how well it keeps its promises in its figures."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from fastapi.testclient import TestClient

from doorstep.db.engine import transaction
from doorstep.runtime import Runtime
from tests.conftest import MerchantCtx
from tests.factories import monaco_day

DAY = date(2026, 11, 25)


def test_a_plan_keeps_ten_minutes_before_every_window_end(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """On a Monaco day with room to spare, every stop starts at least the default 10 minutes
    before its window ends; the plan's stats give the share in the last 15 minutes (0) and
    the mean slack."""
    assert runtime.settings.plan_window_buffer_s == 600
    with transaction(runtime.sessions) as s:
        day = monaco_day(s, merchant.id, DAY, orders=20)
    body = {
        "depot_id": day.depot_id,
        "date": DAY.isoformat(),
        "time_limit_s": 5,
        "max_iterations": 300,
    }
    plan = app_client.post("/v1/plans", json=body, headers=merchant.headers).json()
    stops = [stop for route in plan["routes"] for stop in route["stops"]]
    assert len(stops) == 20
    slack = []
    for stop in stops:
        end = datetime.fromisoformat(stop["window"]["end"])
        at = datetime.fromisoformat(stop["planned_arrival"])
        assert at <= end - timedelta(minutes=10)
        slack.append((end - at).total_seconds() / 60)
    stats = plan["stats"]
    assert stats["window_buffer_s"] == 600 and stats["buffer_relaxed"] == 0
    assert stats["stops_in_last_15_min"] == sum(1 for m in slack if m < 15)
    assert stats["last_15_min_pct"] == round(100 * stats["stops_in_last_15_min"] / 20, 2)
    assert abs(stats["mean_slack_min"] - sum(slack) / 20) < 0.1
