"""``doorstep analytics`` as a user runs it: a merchant's day as JSON and as the HTML report,
on SQLite and PostgreSQL; an unknown merchant is an error, not an empty report."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import Engine

from doorstep.runtime import Runtime
from tests.analytics_scene import build_day
from tests.conftest import MerchantCtx
from tests.integration.test_cli import _plain_url, _run


def test_analytics_prints_json_and_writes_the_report(
    engine: Engine, runtime: Runtime, merchant: MerchantCtx, tmp_path: Path
) -> None:
    """The command prints the same KPIs as the API and writes a report that loads nothing."""
    build_day(runtime, merchant.id)
    env = {"DOORSTEP_DATABASE_URL": _plain_url(engine), "DOORSTEP_DATA_DIR": str(tmp_path)}
    out = tmp_path / "report.html"
    day = ["--from", "2026-11-25", "--to", "2026-11-25"]
    result = _run(
        "analytics", "--merchant", merchant.id, *day, "--report", str(out), "--json", env=env
    )
    assert result.returncode == 0, result.stderr
    kpis = json.loads(result.stdout)
    assert (kpis["orders"], kpis["delivered"], kpis["duplicate_messages"]) == (4, 3, 1)
    html = out.read_text(encoding="utf-8")
    assert "Riviera Florist: delivery report" in html and "<svg" in html
    assert "http://" not in html and "https://" not in html
    unknown = _run("analytics", "--merchant", "mer_nobody", env=env)
    assert unknown.returncode == 2 and "no such merchant" in unknown.stderr
