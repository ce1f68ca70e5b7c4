"""``doorstep bench plan`` end to end on the bundled Helsinki extract, and the independent check
it runs on stored plans. Figures only: nothing here asserts a time."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from doorstep.bench.plan import (
    DAY,
    MAX_SNAP_M,
    MemoisingProvider,
    ScenarioConfig,
    check_persisted_plan,
    pick_site,
    sample_points,
    snap_depot,
    write_scenario,
)
from doorstep.cli import app
from doorstep.clock import FrozenClock
from doorstep.db.engine import make_sessionmaker, transaction
from doorstep.domain.dispatch.inputs import load_day
from doorstep.domain.dispatch.planning import create_plan
from doorstep.routing.travel.base import Profile
from doorstep.routing.travel.osm import OsmRoadProvider
from doorstep.settings import Settings


@pytest.fixture(scope="module")
def helsinki(tmp_path_factory: pytest.TempPathFactory) -> OsmRoadProvider:
    """The bundled Helsinki extract, its graphs cached for this module only."""
    return OsmRoadProvider("helsinki", cache_dir=tmp_path_factory.mktemp("roads"))


@pytest.mark.slow
def test_bench_plan_small_day_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """60 orders and 4 shifts, 1 s and a 2 s reference: every order planned or unassigned with
    a reason, feasible routes, consistent figures and a gap."""
    monkeypatch.setenv("DOORSTEP_DATA_DIR", str(tmp_path / "data"))
    args = ["bench", "plan", "--orders", "60", "--shifts", "4", "--time-limit", "1"]
    result = CliRunner().invoke(app, [*args, "--reference-limit", "2", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)

    scenario = report["scenario"]
    assert scenario["site"] == "Helsinki" and scenario["orders"] == 60
    assert scenario["vehicles"] == {"Van": 2, "Cargo bike": 2}
    assert 60 <= scenario["parcels"] <= 180
    for name in ("short", "reference"):
        run = report[name]
        assert run["orders"] == 60 and run["shifts"] == 4
        assert run["planned"] + run["unassigned"] == 60
        assert sum(run["unassigned_by_reason"].values()) == run["unassigned"]
        assert run["feasible"] and run["violation_count"] == 0
        assert 1 <= run["routes_used"] <= 4
        assert run["objective"] > 0 and run["iterations"] > 0
        assert run["driving_s"] > 0 and run["distance_m"] > 0
        assert run["plan_s"] >= run["matrix_s"] + run["solve_s"] - 0.01
    short, ref = report["short"], report["reference"]
    assert ref["time_limit_s"] == 2.0
    gap = report["gap"]
    expected = (short["objective"] - ref["objective"]) / ref["objective"] * 100
    assert gap["objective_pct"] == pytest.approx(expected, abs=1e-3)
    expected = (short["driving_s"] - ref["driving_s"]) / ref["driving_s"] * 100
    assert gap["driving_pct"] == pytest.approx(expected, abs=1e-3)
    assert gap["planned_difference"] == short["planned"] - ref["planned"]
    assert isinstance(gap["target_met"], bool)


@pytest.mark.slow
def test_bench_plan_repeats_compare_the_means(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--repeats 2`` plans the same day with two optimiser seeds; the gap and the verdict
    compare the mean objectives, and the table lists both seeds."""
    monkeypatch.setenv("DOORSTEP_DATA_DIR", str(tmp_path / "data"))
    args = ["bench", "plan", "--orders", "30", "--shifts", "3", "--seed", "7", "--repeats", "2"]
    args += ["--time-limit", "0.5", "--reference-limit", "1"]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    repeats = report["repeats"]
    assert [r["seed"] for r in repeats] == [7, 8]
    assert report["short"] == repeats[0]["short"]
    for r in repeats:
        assert r["short"]["feasible"] and r["reference"]["feasible"]
        assert r["short"]["planned"] + r["short"]["unassigned"] == 30
    short = sum(r["short"]["objective"] for r in repeats) / 2
    ref = sum(r["reference"]["objective"] for r in repeats) / 2
    assert report["gap"]["objective_pct"] == pytest.approx((short - ref) / ref * 100, abs=1e-3)

    table = CliRunner().invoke(app, args)
    assert table.exit_code == 0, table.output
    assert "Every optimiser seed" in table.stdout
    assert "mean of 2 seeds" in table.stdout


@pytest.mark.slow
def test_bench_plan_without_reference_prints_a_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--reference-limit 0`` skips the reference; the human report still comes out."""
    monkeypatch.setenv("DOORSTEP_DATA_DIR", str(tmp_path / "data"))
    args = ["bench", "plan", "--orders", "20", "--shifts", "2", "--fleet", "vans"]
    result = CliRunner().invoke(app, [*args, "--time-limit", "0.5", "--reference-limit", "0"])
    assert result.exit_code == 0, result.output
    assert "Helsinki" in result.stdout and "planned / orders" in result.stdout
    assert "Short run vs reference" not in result.stdout


def test_points_lie_on_every_profile_network(helsinki: OsmRoadProvider) -> None:
    """Sampled points are reproducible, inside the extract and close to both networks."""
    networks = [helsinki.network(Profile.VAN), helsinki.network(Profile.CARGO_BIKE)]
    first = sample_points(networks, 50, np.random.default_rng(3))
    again = sample_points(networks, 50, np.random.default_rng(3))
    assert first == again and len(set(first)) == 50
    for network in networks:
        snap = network.snap(first)
        assert snap.ok.all() and (snap.distance_m <= MAX_SNAP_M).all()
    site = pick_site(networks[0].graph.bbox.tolist())
    assert site.name == "Helsinki"
    assert pick_site([0.0, 0.0, 1.0, 1.0]).timezone == "UTC"
    depot = snap_depot(networks, site)
    near = sample_points(networks, 20, np.random.default_rng(4), centre=depot, radius_m=400)
    lat, lon = np.radians(depot.lat), np.radians(depot.lon)
    for p in near:  # the radius applies to segment midpoints: allow half a segment
        dy = (np.radians(p.lat) - lat) * 6_371_000
        dx = (np.radians(p.lon) - lon) * 6_371_000 * np.cos(lat)
        assert np.hypot(dx, dy) < 700


def test_check_flags_a_late_stop_and_a_lost_order(
    engine: Engine, helsinki: OsmRoadProvider
) -> None:
    """The independent check passes a stored plan and catches what a broken one would do."""
    config = ScenarioConfig(orders=15, shifts=2, seed=5)
    networks = [helsinki.network(Profile.VAN), helsinki.network(Profile.CARGO_BIKE)]
    site = pick_site(networks[0].graph.bbox.tolist())
    depot = snap_depot(networks, site)
    points = sample_points(networks, config.orders, np.random.default_rng(1))
    sessions = make_sessionmaker(engine)
    scenario = write_scenario(sessions, site, depot, points, config)
    provider = MemoisingProvider(helsinki)
    settings = Settings(travel_provider="osm", osm_source="helsinki")
    tz = ZoneInfo(site.timezone)
    clock = FrozenClock(datetime.combine(DAY - timedelta(days=1), dtime(18), tzinfo=tz))
    view = create_plan(
        sessions,
        clock,
        settings,
        merchant_id=scenario.merchant_id,
        depot_id=scenario.depot_id,
        day=DAY,
        time_limit_s=0.3,
        seed=1,
        provider=provider,
        max_iterations=200,
    )
    with transaction(sessions) as session:
        day = load_day(session, clock, settings, scenario.merchant_id, scenario.depot_id, DAY)
    plan = view.plan
    assert check_persisted_plan(plan, day, provider) == []
    assert provider.computed == 2  # one matrix per profile, then answered from memory

    route = next(r for r in plan.routes if r.stops)
    stop = route.stops[-1]
    late = timedelta(hours=6)
    assert stop.planned_arrival is not None and stop.planned_departure is not None
    stop.planned_arrival += late
    stop.planned_departure += late
    problems = check_persisted_plan(plan, day, provider)
    assert any("after its window" in p for p in problems), problems

    stop.planned_arrival -= late
    stop.planned_departure -= late
    lost = route.stops.pop(0)
    problems = check_persisted_plan(plan, day, provider)
    assert any("planned or unassigned 0 times" in p for p in problems), problems
    route.stops.insert(0, lost)
