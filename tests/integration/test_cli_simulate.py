"""``doorstep simulate`` as a user runs it: a tiny day prints the KPIs the issue names as JSON
and writes a report that opens offline; a missing extract is a clear error."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.integration.test_cli import DOORSTEP

KEYS = {
    "orders", "delivered", "on_time_rate", "first_attempt_rate", "eta_abs_error_min",
    "eta_window_coverage", "late_warned_share", "messages_per_delivery", "duplicate_messages",
}  # fmt: skip


def _simulate(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOORSTEP_")}
    return subprocess.run(
        [DOORSTEP, "simulate", *args], env=env, capture_output=True, text=True, timeout=600,
        check=False,
    )  # fmt: skip


def test_simulate_prints_the_kpis_and_writes_the_report(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    day = ["--orders", "6", "--drivers", "1", "--seed", "2", "--day", "2026-12-08"]
    result = _simulate(*day, "--json", "--report", str(out))
    assert result.returncode == 0, result.stderr
    kpis = json.loads(result.stdout)
    assert kpis.keys() >= KEYS
    assert set(kpis["eta_abs_error_min"]) == {"route_start", "5_stops", "1_stop"}
    assert kpis["delivered"] >= 1 and kpis["duplicate_messages"] == 0
    assert kpis["simulation"]["seed"] == 2 and kpis["simulation"]["city"] == "Monaco"
    assert kpis["simulation"]["simulation_errors"] == []
    assert kpis["simulation"]["failed_attempts_today"] >= 0
    html = out.read_text(encoding="utf-8")
    assert "Simulated day in Monaco, 2026-12-08 (seed 2)" in html and "<svg" in html
    assert "http://" not in html and "https://" not in html


def test_simulate_refuses_a_missing_extract(tmp_path: Path) -> None:
    result = _simulate("--osm", str(tmp_path / "nowhere.osm.pbf"))
    assert result.returncode == 2 and "no such extract" in result.stderr
