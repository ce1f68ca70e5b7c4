"""Shared set-up for the position-ingest tests: a driver with a device on a published route
(shift running at the frozen clock's time), flushing the write buffer, reading /metrics."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, timedelta

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from doorstep.db.engine import transaction
from doorstep.domain.dispatch.models import Plan, Route
from doorstep.runtime import Runtime
from tests.conftest import NOW
from tests.factories import T0, make_depot, make_driver, make_shift, make_vehicle


@dataclass(frozen=True)
class Fleet:
    merchant_id: str
    driver_id: str
    device_id: str
    route_id: str


def published_route(
    runtime: Runtime, merchant_id: str, *, route_status: str = "planned", name: str = "Marco Rossi"
) -> Fleet:
    """A driver with a long random device id, on a published route whose shift runs now."""
    device = "dev-" + secrets.token_urlsafe(18)
    with transaction(runtime.sessions) as s:
        depot = make_depot(s, merchant_id)
        vehicle = make_vehicle(s, merchant_id)
        driver = make_driver(s, merchant_id, device_id=device, name=name)
        shift = make_shift(
            s,
            merchant_id,
            driver=driver,
            vehicle=vehicle,
            depot=depot,
            start_at=NOW - timedelta(hours=1),
            end_at=NOW + timedelta(hours=7),
        )
        plan = Plan(
            id="pln_" + secrets.token_hex(6),
            merchant_id=merchant_id,
            depot_id=depot.id,
            date=date(2026, 11, 25),
            status="published",
            seed=1,
            time_limit_s=1,
            travel_provider="straight",
            stats={},
            unassigned=[],
            created_at=T0,
        )
        s.add(plan)
        s.flush()
        route = Route(
            id="rte_" + secrets.token_hex(6),
            merchant_id=merchant_id,
            plan_id=plan.id,
            shift_id=shift.id,
            driver_id=driver.id,
            vehicle_id=vehicle.id,
            position=0,
            status=route_status,
            violations=[],
            geometry=[],
        )
        s.add(route)
        s.flush()
        return Fleet(merchant_id, driver.id, device, route.id)


def flush(client: TestClient) -> None:
    """Write the buffered positions now (the server does it every few hundred ms anyway)."""
    client.app.state.position_ingest.writer.flush()  # type: ignore[attr-defined]


def metric(client: TestClient, name: str, **labels: str) -> float:
    """The value of one sample of /metrics (0 when it has not been counted yet)."""
    text = client.get("/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0
