"""An address beyond the loaded road map is reported as outside its coverage, not as
unreachable, by the OSM provider and by planning."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from doorstep.domain.dispatch.inputs import DayInput, OrderInput, ShiftInput
from doorstep.domain.dispatch.planning import compute_plan
from doorstep.routing.travel.base import LatLon, Profile
from doorstep.routing.travel.osm import OsmRoadProvider

CENTRE = LatLon(60.1699, 24.9384)  # Helsinki railway square, on the bundled extract
TAMPERE = LatLon(61.4978, 23.7610)  # 160 km north: far beyond it


@pytest.fixture(scope="module")
def helsinki(tmp_path_factory: pytest.TempPathFactory) -> OsmRoadProvider:
    return OsmRoadProvider("helsinki", cache_dir=tmp_path_factory.mktemp("roads"))


def test_points_beyond_the_extract_are_outside_its_coverage(helsinki: OsmRoadProvider) -> None:
    """Tampere and 0,0 are outside the Helsinki extract; the centre is inside and reachable."""
    m = helsinki.matrix([CENTRE, TAMPERE, LatLon(60.1675, 24.9500), LatLon(0.0, 0.0)], Profile.VAN)
    assert m.outside == {1, 3}
    assert m.outside <= m.unreachable
    assert 0 not in m.unreachable and 2 not in m.unreachable


def test_planning_names_outside_coverage_as_its_own_reason(helsinki: OsmRoadProvider) -> None:
    """An order in Tampere on a Helsinki day is unassigned as outside_coverage with a sentence
    that says so; the order in the centre is planned."""
    tz = ZoneInfo("Europe/Helsinki")
    day = date(2026, 11, 25)

    def order(oid: str, point: LatLon) -> OrderInput:
        return OrderInput(oid, oid.upper(), point, None, None, 120, 1000, 1, frozenset())

    shift = ShiftInput(
        shift_id="s1",
        driver_id="d1",
        vehicle_id="v1",
        profile=Profile.VAN,
        start_at=datetime(2026, 11, 25, 6, 0, tzinfo=UTC),
        end_at=datetime(2026, 11, 25, 14, 0, tzinfo=UTC),
        break_earliest_at=None,
        break_latest_at=None,
        break_duration_s=None,
        return_to_depot=True,
        capacity_g=100_000,
        capacity_parcels=50,
        skills=frozenset(),
    )
    inputs = DayInput(
        merchant_id="m",
        depot_id="dep",
        day=day,
        tz=tz,
        depot=LatLon(60.1710, 24.9414),
        orders=[order("near", CENTRE), order("far", TAMPERE)],
        shifts=[shift],
    )
    draft = compute_plan(inputs, helsinki, time_limit_s=0.2, seed=1, max_iterations=50)
    assert [(u["order_id"], u["reason"]) for u in draft.unassigned] == [("far", "outside_coverage")]
    assert "coverage" in draft.unassigned[0]["detail"]
    assert [s.job_id for r in draft.routes if r.sim for s in r.sim.stops] == ["near"]
