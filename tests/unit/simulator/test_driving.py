"""The simulator's driving model: seeded, slower in the rush hour, honest stop times, GPX replay
(straight-line roads, so no road network is loaded)."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from doorstep.routing.travel.base import LatLon, Profile
from doorstep.routing.travel.straight import StraightLineProvider, haversine_m
from doorstep.simulator.driving import (
    Drive,
    DrivingModel,
    StopSpec,
    drive_route,
    fixes_from_gpx,
    fixes_to_gpx,
    rush_factor,
)

MONACO = ZoneInfo("Europe/Monaco")
DEPOT = LatLon(43.7311, 7.4197)
STOPS = [
    StopSpec(LatLon(43.7384, 7.4246), 180),
    StopSpec(LatLon(43.7447, 7.4300), 240),
    StopSpec(LatLon(43.7402, 7.4213), 120),
    StopSpec(LatLon(43.7335, 7.4170), 180),
]
TRAVEL = StraightLineProvider()


def _drive(hour: int, minute: int = 0, seed: int = 11) -> Drive:
    start = datetime(2026, 11, 25, hour, minute, tzinfo=MONACO)
    return drive_route(TRAVEL, Profile.VAN, DEPOT, STOPS, start, seed=seed, tz=MONACO, end=DEPOT)


def test_the_same_seed_drives_the_same_day() -> None:
    """Two drives with one seed give identical fixes and stop times; another seed does not."""
    a, b, c = _drive(10), _drive(10), _drive(10, seed=12)
    assert a.fixes == b.fixes and a.visits == b.visits
    assert a.visits != c.visits


def test_rush_hour_is_slower_than_the_night() -> None:
    """The same route with the same luck takes longer started at 08:00 than at 03:00, by the
    driving alone (services do not depend on the hour)."""
    night, rush = _drive(3), _drive(8)
    night_total = night.end_at - night.visits[0].reached_at
    rush_total = rush.end_at - rush.visits[0].reached_at
    assert rush_total > night_total
    assert (
        rush_factor(DrivingModel(), 8.25, main_road=True)
        > rush_factor(DrivingModel(), 8.25, main_road=False)
        > rush_factor(DrivingModel(), 3.0, main_road=False)
    )


def test_stop_times_are_in_order_and_services_vary() -> None:
    """Every stop is reached, served for a positive, varying time, and left before the next."""
    drive = _drive(11)
    visits = drive.visits
    assert [v.index for v in visits] == [0, 1, 2, 3]
    for v, nxt in itertools.pairwise(visits):
        assert v.reached_at <= v.arrival < v.departure <= nxt.reached_at
    served = [
        (v.departure - v.arrival).total_seconds() / s.service_s
        for v, s in zip(visits, STOPS, strict=True)
    ]
    assert len({round(x, 3) for x in served}) == len(served)


def test_an_early_driver_waits_for_the_window() -> None:
    """A stop whose window opens an hour after the start is served from the opening on."""
    start = datetime(2026, 11, 25, 10, 0, tzinfo=MONACO)
    opens = start + timedelta(hours=1)
    stops = [StopSpec(STOPS[0].point, 180, window_start=opens)]
    drive = drive_route(TRAVEL, Profile.VAN, DEPOT, stops, start, seed=3, tz=MONACO)
    assert drive.visits[0].reached_at < opens == drive.visits[0].arrival


def test_fixes_follow_the_drive_with_gps_noise() -> None:
    """Fixes come every ~10 s from start to finish, near the stops while parked, and are
    scattered by a few metres like a phone's."""
    drive = _drive(14)
    fixes = drive.fixes
    gaps = [(b.at - a.at).total_seconds() for a, b in itertools.pairwise(fixes)]
    assert max(gaps) <= 11 and min(gaps) >= 0
    first_visit = drive.visits[0]
    parked = [f for f in fixes if first_visit.reached_at < f.at < first_visit.departure]
    assert parked
    offsets = [
        float(haversine_m(f.lat, f.lon, STOPS[0].point.lat, STOPS[0].point.lon)) for f in parked
    ]
    assert 0 < sorted(offsets)[len(offsets) // 2] < 20
    assert all(f.accuracy_m >= 3 for f in fixes)


def test_gpx_replay_gives_back_the_fixes() -> None:
    """A drive written as GPX and read back has the same times and positions, in order."""
    fixes = _drive(9).fixes
    replayed = fixes_from_gpx(fixes_to_gpx(fixes))
    assert len(replayed) == len(fixes)
    for a, b in zip(fixes, replayed, strict=True):
        assert a.at == b.at
        assert abs(a.lat - b.lat) < 1e-6 and abs(a.lon - b.lon) < 1e-6
