"""``doorstep bench api`` runs end to end against a real server subprocess; the in-process
``api-calls`` and ``page-calls`` benches through the app."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from doorstep.bench.api import order_body
from doorstep.cli import app
from doorstep.clock import FrozenClock
from doorstep.domain.orders.schemas import OrderCreate
from tests.conftest import NOW


def test_bench_order_body_is_a_valid_order() -> None:
    """The bodies the bench posts pass the API's own order validation."""
    order = OrderCreate.model_validate(order_body("BENCH-1", FrozenClock(NOW).now()))
    assert order.reference == "BENCH-1" and order.window is not None


@pytest.mark.slow
def test_bench_api_json_on_sqlite() -> None:
    """A tiny run creates orders, reads them back, and reports every scenario without errors."""
    result = CliRunner().invoke(
        app, ["bench", "api", "--requests", "30", "--concurrency", "3", "--json"]
    )
    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout)["runs"][0]
    assert run["database"] == "sqlite"
    names = [s["name"] for s in run["scenarios"]]
    assert names == ["GET /healthz", "POST /v1/orders", "GET /v1/orders/{id}"]
    for scenario in run["scenarios"]:
        assert scenario["errors"] == 0 and scenario["requests"] == 30
        assert scenario["rps"] > 0 and scenario["p99_ms"] >= scenario["p50_ms"]
        assert scenario["server_cpu_ms_per_request"] > 0
    assert run["scenarios"][0]["rps_ratio"] == 1.0


@pytest.mark.slow
def test_bench_api_calls_json() -> None:
    """The in-process bench creates and reads orders through the app and counts each request's
    Python calls: a create does more than a read, a read more than /healthz."""
    result = CliRunner().invoke(
        app, ["bench", "api-calls", "--requests", "10", "--rounds", "1", "--json"]
    )
    assert result.exit_code == 0, result.output
    costs = {c["name"]: c for c in json.loads(result.stdout)}
    assert list(costs) == ["POST /v1/orders", "GET /v1/orders/{id}", "GET /healthz"]
    calls = [c["python_calls"] for c in costs.values()]
    assert calls[0] > calls[1] > calls[2] > 0
    assert all(c["cpu_ms"] > 0 for c in costs.values())


@pytest.mark.slow
def test_bench_page_calls_json() -> None:
    """The console bench signs in, opens and saves orders through the app: each request is one
    pool hand-off, and 64 form posts at once on SQLite all succeed."""
    result = CliRunner().invoke(
        app, ["bench", "page-calls", "--requests", "10", "--rounds", "1", "--json"]
    )
    assert result.exit_code == 0, result.output
    costs = {c["name"]: c for c in json.loads(result.stdout)}
    assert list(costs) == [
        "GET /console/orders/{id}",
        "GET /console/orders",
        "POST /console/orders/{id}/edit",
    ]
    for cost in costs.values():
        assert cost["handoffs"] == 1.0 and cost["cpu_ms"] > 0
        assert cost["concurrent_errors"] == 0
