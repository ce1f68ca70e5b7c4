"""``GET /v1/analytics/kpis`` on SQLite and PostgreSQL: the figures of a built day read from
the event log, by day, driver and zone; only the caller's own orders; a wrong period is 422."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from doorstep.db.engine import transaction
from doorstep.domain.dispatch.models import Depot, Plan, Route
from doorstep.domain.orders.status import Reason, Status
from doorstep.ids import new_id
from doorstep.runtime import Runtime
from tests.analytics_scene import DAY, _event, _status, build_day
from tests.conftest import MerchantCtx
from tests.factories import T0, local, make_driver, make_order, make_shift, make_vehicle
from tests.slots_setup import IN_MONACO

ONE_DAY = {"from": "2026-11-25", "to": "2026-11-25"}


def test_kpis_of_a_day_from_the_event_log(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """A, on time; B, failed then late but warned; C, late unwarned with a duplicate SMS; D not
    delivered: the API's rates, ETA error, messages, zones, drivers and routes say so."""
    scene = build_day(runtime, merchant.id)
    answer = app_client.get("/v1/analytics/kpis", params=ONE_DAY, headers=merchant.headers)
    assert answer.status_code == 200, answer.text
    k = answer.json()
    assert (k["from"], k["to"], k["timezone"]) == ("2026-11-25", "2026-11-25", "Europe/Monaco")
    assert (k["orders"], k["delivered"], k["failed_attempts"]) == (4, 3, 1)
    assert k["on_time_rate"] == round(1 / 3, 4)
    assert k["first_attempt_rate"] == round(2 / 3, 4)
    assert (k["late"], k["late_warned"], k["late_warned_share"]) == (2, 1, 0.5)
    assert k["warning_lead_min"]["median"] == 30.0
    assert k["eta_abs_error_min"]["1_stop"] == {"n": 1, "median": 2.0, "p90": 2.0}
    # The first ETA within 5 stops came at 1 stop (6 stops before it): the same prediction.
    assert k["eta_abs_error_min"]["5_stops"]["median"] == 2.0
    assert k["eta_abs_error_min"]["route_start"]["median"] == 12.0
    assert k["eta_window_coverage"] == {"route_start": 0.0, "5_stops": 1.0, "1_stop": 1.0}
    assert k["messages_per_delivery"] == round(4 / 3, 2)
    assert k["duplicate_messages"] == 1
    assert k["self_service"]["instructions_changed"] == 1
    assert (k["route_count"], k["distance_km"], k["driving_min"]) == (2, 33.5, 104.0)
    assert [(g["key"], g["orders"]) for g in k["by_day"]] == [("2026-11-25", 4)]
    zones = {g["label"]: (g["orders"], g["delivered"]) for g in k["by_zone"]}
    assert zones == {"Monaco": (3, 2), "No zone": (1, 1)}
    assert k["by_zone"][0]["key"] == scene.zone_id
    drivers = {g["label"]: (g["key"], g["orders"], g["on_time_rate"]) for g in k["by_driver"]}
    assert drivers == {
        "Ann": (scene.drivers["Ann"], 2, 0.5),
        "Bea": (scene.drivers["Bea"], 2, 0.0),
    }
    assert sorted((r["driver_name"], r["distance_km"]) for r in k["routes"]) == [
        ("Ann", 21.5),
        ("Bea", 12.0),
    ]
    two_days = app_client.get(
        "/v1/analytics/kpis",
        params={"from": "2026-11-25", "to": "2026-11-26"},
        headers=merchant.headers,
    ).json()
    assert two_days["orders"] == 5 and [g["orders"] for g in two_days["by_day"]] == [4, 1]


def test_a_failed_order_rebooked_to_another_day_is_a_missed_first_attempt_on_its_day(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """F, due 14-16 on the 25th, fails at 15:00 and is rebooked to the 26th, where it is
    delivered. The 25th's first-attempt rate counts F as a miss (A and C of A, B, C and F),
    though F's window is no longer that day; the 26th lists F but made no first attempt."""
    build_day(runtime, merchant.id)
    clock = runtime.clock
    with transaction(runtime.sessions) as s:
        f = make_order(
            s, merchant.id, reference="AN-F", lat=IN_MONACO["lat"], lon=IN_MONACO["lon"],
            window=(local(DAY, 14), local(DAY, 16)), status="pending",
        )  # fmt: skip
        for status, hour in ((Status.SCHEDULED, 8), (Status.PICKED_UP, 13)):
            _status(s, clock, f, status, local(DAY, hour))
        _status(s, clock, f, Status.OUT_FOR_DELIVERY, local(DAY, 13, 5))
        _status(
            s, clock, f, Status.DELIVERY_FAILED, local(DAY, 15), reason=Reason.CONSIGNEE_NOT_HOME
        )
        f.window_start = local(DAY, 14) + timedelta(days=1)
        f.window_end = local(DAY, 16) + timedelta(days=1)
        _event(s, clock, f, "order.rescheduled", local(DAY, 15, 5), by="recipient")
        _status(s, clock, f, Status.OUT_FOR_DELIVERY, local(DAY, 14) + timedelta(days=1))
        _status(s, clock, f, Status.DELIVERED, local(DAY, 14, 20) + timedelta(days=1))

    day = app_client.get("/v1/analytics/kpis", params=ONE_DAY, headers=merchant.headers).json()
    assert (day["orders"], day["delivered"]) == (4, 3)  # F is listed under the 26th
    assert day["failed_attempts"] == 2  # B's and F's, both made on the 25th
    assert (day["first_attempt"], day["first_attempt_rate"]) == (2, 0.5)
    assert [(g["key"], g["first_attempt_rate"]) for g in day["by_day"]] == [("2026-11-25", 0.5)]
    nxt = app_client.get(
        "/v1/analytics/kpis",
        params={"from": "2026-11-26", "to": "2026-11-26"},
        headers=merchant.headers,
    ).json()
    assert (nxt["orders"], nxt["delivered"]) == (2, 1)  # E and F; F delivered
    assert nxt["failed_attempts"] == 0
    assert (nxt["first_attempt"], nxt["first_attempt_rate"]) == (0, None)


def test_a_shift_the_plan_gave_no_stop_is_no_route_and_no_drivers_row(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """A published plan keeps a route for every shift, used or not: Cleo's, without a stop,
    drove nothing, so the day still has Ann's and Bea's two routes and no row for Cleo."""
    build_day(runtime, merchant.id)
    with transaction(runtime.sessions) as s:
        plan = s.scalars(select(Plan).where(Plan.merchant_id == merchant.id)).one()
        vehicle = make_vehicle(s, merchant.id, name="Van Cleo")
        driver = make_driver(s, merchant.id, name="Cleo")
        shift = make_shift(
            s, merchant.id, driver=driver, vehicle=vehicle, depot=s.get(Depot, plan.depot_id),
            start_at=local(DAY, 13), end_at=local(DAY, 19),
        )  # fmt: skip
        s.add(
            Route(
                id=new_id("rte", T0), merchant_id=merchant.id, plan_id=plan.id,
                shift_id=shift.id, driver_id=driver.id, vehicle_id=vehicle.id, position=2,
                status="planned", start_at=local(DAY, 13), end_at=local(DAY, 13),
                distance_m=0.0, driving_s=0.0,
            )
        )  # fmt: skip
    k = app_client.get("/v1/analytics/kpis", params=ONE_DAY, headers=merchant.headers).json()
    assert k["route_count"] == 2 and len(k["routes"]) == 2
    assert sorted(g["label"] for g in k["by_driver"]) == ["Ann", "Bea"]


def test_kpis_count_only_the_callers_orders(
    app_client: TestClient, runtime: Runtime, make_merchant: Callable[..., MerchantCtx]
) -> None:
    """Another merchant's day is invisible: its KPIs count none of the first one's orders."""
    first = make_merchant("Riviera Florist")
    other = make_merchant("Menton Grocer")
    build_day(runtime, first.id)
    mine = app_client.get("/v1/analytics/kpis", params=ONE_DAY, headers=first.headers).json()
    theirs = app_client.get("/v1/analytics/kpis", params=ONE_DAY, headers=other.headers).json()
    assert mine["orders"] == 4
    assert (theirs["orders"], theirs["delivered"], theirs["route_count"]) == (0, 0, 0)
    assert theirs["by_driver"] == [] and theirs["by_zone"] == []
    assert theirs["on_time_rate"] is None


def test_a_wrong_period_is_a_problem(app_client: TestClient, merchant: MerchantCtx) -> None:
    """An end before the start, a span over 92 days, a malformed date and one at the calendar's
    edge answer 422 problems;
    without a key, 401; with no dates, the last 7 days up to the merchant's today."""
    url = "/v1/analytics/kpis"
    backwards = app_client.get(
        url, params={"from": "2026-11-25", "to": "2026-11-24"}, headers=merchant.headers
    )
    assert backwards.status_code == 422
    assert backwards.headers["content-type"].startswith("application/problem+json")
    assert backwards.json()["errors"][0]["field"] == "to"
    too_long = app_client.get(
        url, params={"from": "2026-01-01", "to": "2026-12-31"}, headers=merchant.headers
    )
    assert too_long.status_code == 422
    malformed = app_client.get(url, params={"from": "25/11/2026"}, headers=merchant.headers)
    assert malformed.status_code == 422
    edge = app_client.get(url, params={"from": "9999-12-31"}, headers=merchant.headers)
    assert edge.status_code == 422 and edge.json()["errors"][0]["field"] == "from"
    assert app_client.get(url).status_code == 401
    default = app_client.get(url, headers=merchant.headers).json()
    assert (default["from"], default["to"]) == ("2026-11-19", "2026-11-25")
    assert len(default["by_day"]) == 7 and default["orders"] == 0
