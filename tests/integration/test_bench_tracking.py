"""``doorstep bench tracking`` runs end to end against a real server on PostgreSQL."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from doorstep.bench.local_server import DEFAULT_POSTGRES_URL
from doorstep.cli import app
from doorstep.db.engine import make_engine
from tests.conftest import require_service


def _postgres_up() -> None:
    engine = make_engine(DEFAULT_POSTGRES_URL)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        require_service("PostgreSQL", str(exc))
    finally:
        engine.dispose()


@pytest.mark.slow
def test_bench_tracking_json_reports_positions_against_healthz() -> None:
    """A tiny run measures /healthz, OsmAnd's query form and Traccar's JSON form without
    errors, gives each a ratio to /healthz, and finds every sent position stored."""
    _postgres_up()
    result = CliRunner().invoke(
        app,
        ["bench", "tracking", "--requests", "40", "--concurrency", "4", "--devices", "5", "--json"],
    )
    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout)
    assert run["database"] == "postgresql"
    names = [s["name"] for s in run["scenarios"]]
    assert names == ["GET /healthz", "GET /ingest/osmand", "POST /ingest/osmand (JSON)"]
    for scenario in run["scenarios"]:
        assert scenario["errors"] == 0 and scenario["requests"] == 40
        assert scenario["rps"] > 0 and scenario["rps_ratio"] > 0
    assert run["scenarios"][0]["rps_ratio"] == 1.0
    # Measured and warm-up requests of both position scenarios, every one stored.
    assert run["positions_sent"] >= 2 * 40
    assert run["positions_stored"] == run["positions_sent"]
    assert run["sse"] is None  # the second half needs the live bus
