"""The simulator's driving model: a seeded drive of a route over a road network.

Given a travel-time provider (the OSM road network of the simulated city, or straight lines),
the vehicle's start, its stops in order and a start time, :func:`drive_route` drives each leg
along the provider's road path and returns what really happened: timed GPS fixes (with GPS
noise, as a phone reports them) and the true arrival and departure at every stop.

What varies, all from one seed (the same seed gives the same drive):

* road type: a leg's free-flow time is the provider's, which already uses each road's speed;
  main roads (free-flow average above ``arterial_kmh``) suffer more in the rush hour than
  residential streets;
* time of day: a morning and an evening rush hour, smooth bumps in the local time;
* the driver: a persistent pace for the day (some drive briskly, some do not);
* each leg: lognormal noise (lights, double-parked vans), and now and then an incident;
* each stop: the service time varies (lognormal), and a driver who is early waits for the
  window to open before starting to serve (that is the arrival the stop records, as planned).

GPX replay: :func:`fixes_from_gpx` reads the track points of a GPX file as fixes, and
:func:`fixes_to_gpx` writes fixes as one, so recorded or simulated drives can be replayed.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from doorstep.routing.travel.base import UNREACHABLE, LatLon, Profile, TravelTimeProvider
from doorstep.routing.travel.straight import haversine_m

METRES_PER_DEG_LAT = 111_320.0


@dataclass(frozen=True)
class RushHour:
    """One rush hour: a bump centred on ``peak`` (local hours, e.g. 8.25 for 08:15)."""

    peak: float
    width_h: float
    main_road: float  # extra share of travel time at the peak on main roads
    side_road: float  # ... and on side streets


@dataclass(frozen=True)
class DrivingModel:
    rush_hours: tuple[RushHour, ...] = (
        RushHour(8.25, 0.9, 0.7, 0.3),
        RushHour(17.75, 1.0, 0.8, 0.35),
    )
    arterial_kmh: float = 35.0
    driver_sigma: float = 0.08  # lognormal spread of the driver's day pace
    leg_sigma: float = 0.15  # lognormal spread of each leg
    incident_chance: float = 0.04  # per leg
    incident_s: tuple[float, float] = (120.0, 480.0)
    service_sigma: float = 0.35
    fix_interval_s: float = 10.0
    gps_sigma_m: float = 5.0
    gps_outlier_chance: float = 0.03
    gps_outlier_sigma_m: float = 25.0


@dataclass(frozen=True)
class StopSpec:
    """A stop to drive to: where, its planned service time, and when its window opens."""

    point: LatLon
    service_s: float
    window_start: datetime | None = None


@dataclass(frozen=True)
class Fix:
    """One GPS fix as a phone reports it."""

    at: datetime
    lat: float
    lon: float
    speed_mps: float
    heading_deg: float | None
    accuracy_m: float


@dataclass(frozen=True)
class Visit:
    """The truth at one stop: when the driver arrived (started serving) and left."""

    index: int
    arrival: datetime
    departure: datetime
    reached_at: datetime  # when the vehicle got to the door (before any wait for the window)


@dataclass
class Drive:
    fixes: list[Fix] = field(default_factory=list)
    visits: list[Visit] = field(default_factory=list)
    end_at: datetime | None = None


def rush_factor(model: DrivingModel, local_hour: float, main_road: bool) -> float:
    """How much longer a leg takes at this local time than at free flow (1.0: not at all)."""
    extra = 0.0
    for rush in model.rush_hours:
        bump = math.exp(-0.5 * ((local_hour - rush.peak) / rush.width_h) ** 2)
        extra += bump * (rush.main_road if main_road else rush.side_road)
    return 1.0 + extra


def _local_hour(at: datetime, tz: ZoneInfo) -> float:
    local = at.astimezone(tz)
    return local.hour + local.minute / 60 + local.second / 3600


def _cumulative(path: Sequence[LatLon]) -> list[float]:
    out = [0.0]
    for a, b in itertools.pairwise(path):
        out.append(out[-1] + float(haversine_m(a.lat, a.lon, b.lat, b.lon)))
    return out


def _along(path: Sequence[LatLon], cum: Sequence[float], metres: float) -> tuple[LatLon, float]:
    """The point ``metres`` along ``path`` and the heading there (degrees from north)."""
    if len(path) == 1 or cum[-1] <= 0:
        return path[0], 0.0
    metres = min(max(metres, 0.0), cum[-1])
    lo, hi = 0, len(cum) - 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if cum[mid] <= metres:
            lo = mid
        else:
            hi = mid
    a, b = path[lo], path[hi]
    span = cum[hi] - cum[lo]
    share = 0.0 if span <= 0 else (metres - cum[lo]) / span
    point = LatLon(a.lat + (b.lat - a.lat) * share, a.lon + (b.lon - a.lon) * share)
    dy = b.lat - a.lat
    dx = (b.lon - a.lon) * math.cos(math.radians(a.lat))
    return point, (math.degrees(math.atan2(dx, dy)) + 360.0) % 360.0


class _Gps:
    def __init__(self, model: DrivingModel, rng: random.Random) -> None:
        self.model, self.rng = model, rng

    def fix(self, at: datetime, point: LatLon, speed: float, heading: float | None) -> Fix:
        outlier = self.rng.random() < self.model.gps_outlier_chance
        sigma = self.model.gps_outlier_sigma_m if outlier else self.model.gps_sigma_m
        north, east = self.rng.gauss(0, sigma), self.rng.gauss(0, sigma)
        lat = point.lat + north / METRES_PER_DEG_LAT
        lon = point.lon + east / (METRES_PER_DEG_LAT * math.cos(math.radians(point.lat)))
        accuracy = round(max(3.0, sigma * (1.5 + self.rng.random())), 1)
        return Fix(at, lat, lon, max(0.0, speed), heading, accuracy)


def drive_route(
    travel: TravelTimeProvider,
    profile: Profile,
    start: LatLon,
    stops: Sequence[StopSpec],
    start_at: datetime,
    *,
    seed: int,
    tz: ZoneInfo,
    model: DrivingModel | None = None,
    end: LatLon | None = None,
    slowdown: Callable[[datetime, LatLon, LatLon], float] | None = None,
) -> Drive:
    """Drive from ``start`` through ``stops`` in order (and on to ``end`` if given).

    ``slowdown(at, a, b)``, when given, multiplies a leg's moving time (1.0: no effect): an
    incident that slows some roads for part of the day."""
    model = model or DrivingModel()
    rng = random.Random(seed)
    # GPS noise has its own stream, so the drive itself does not depend on how many fixes
    # were taken (a rush-hour drive and a night drive meet the same luck on the road).
    gps = _Gps(model, random.Random(seed + 1_000_003))
    driver_pace = math.exp(rng.gauss(0.0, model.driver_sigma))
    points = [start, *(s.point for s in stops)] + ([end] if end is not None else [])
    matrix = travel.matrix(points, profile)
    drive = Drive()
    t = start_at
    step = timedelta(seconds=model.fix_interval_s)
    next_fix = start_at + step * rng.random()
    for leg in range(len(points) - 1):
        a, b = points[leg], points[leg + 1]
        free_s = float(matrix.durations_s[leg, leg + 1])
        metres = float(matrix.distances_m[leg, leg + 1])
        if free_s >= UNREACHABLE or metres >= UNREACHABLE:
            free_s = float(haversine_m(a.lat, a.lon, b.lat, b.lon)) / 5.0
            metres = free_s * 5.0
        main_road = free_s > 0 and metres / free_s * 3.6 >= model.arterial_kmh
        factor = rush_factor(model, _local_hour(t, tz), main_road)
        noise = math.exp(rng.gauss(0.0, model.leg_sigma))
        incident = rng.uniform(*model.incident_s) if rng.random() < model.incident_chance else 0.0
        moving_s = free_s * factor * driver_pace * noise
        if slowdown is not None:
            moving_s *= slowdown(t, a, b)
        leg_s = moving_s + incident
        path = travel.path([a, b], profile) or [a, b]
        cum = _cumulative(path)
        length = cum[-1]
        # Fixes: moving at a steady speed, with the incident as a stop halfway.
        pause_at = moving_s / 2
        while (elapsed := (next_fix - t).total_seconds()) < leg_s:
            if incident and pause_at <= elapsed < pause_at + incident:
                done, speed = length / 2, 0.0
            else:
                moving = elapsed if elapsed < pause_at else elapsed - incident
                done = length * moving / moving_s if moving_s > 0 else length
                speed = length / moving_s if moving_s > 0 else 0.0
            point, heading = _along(path, cum, done)
            drive.fixes.append(gps.fix(next_fix, point, speed, heading))
            next_fix += step
        reached = t + timedelta(seconds=leg_s)
        if leg >= len(stops):  # the way back to the end
            t = reached
            break
        spec = stops[leg]
        arrival = max(reached, spec.window_start) if spec.window_start else reached
        service = spec.service_s * math.exp(
            rng.gauss(-0.5 * model.service_sigma**2, model.service_sigma)
        )
        departure = arrival + timedelta(seconds=service)
        while next_fix < departure:  # parked at the door: fixes jitter around it
            drive.fixes.append(gps.fix(next_fix, b, 0.0, None))
            next_fix += step
        drive.visits.append(Visit(leg, arrival, departure, reached))
        t = departure
    drive.end_at = t
    return drive


def fixes_to_gpx(fixes: Sequence[Fix], name: str = "Doorstep drive") -> str:
    """The fixes as a GPX 1.1 track (time, position, and speed/course where known)."""
    import gpxpy.gpx

    gpx = gpxpy.gpx.GPX()
    track = gpxpy.gpx.GPXTrack(name=name)
    segment = gpxpy.gpx.GPXTrackSegment()
    for f in fixes:
        segment.points.append(
            gpxpy.gpx.GPXTrackPoint(
                f.lat,
                f.lon,
                time=f.at,
                speed=f.speed_mps,
                horizontal_dilution=f.accuracy_m / 5.0,
            )
        )
    track.segments.append(segment)
    gpx.tracks.append(track)
    return str(gpx.to_xml(version="1.1"))


def fixes_from_gpx(text: str, *, default_accuracy_m: float = 10.0) -> list[Fix]:
    """The timed track points of a GPX document, in time order, as fixes (points without a
    time are skipped: they cannot be replayed)."""
    import gpxpy

    gpx = gpxpy.parse(text)
    fixes: list[Fix] = []
    for track in gpx.tracks:
        for segment in track.segments:
            for p in segment.points:
                if p.time is None:
                    continue
                accuracy = (
                    p.horizontal_dilution * 5.0 if p.horizontal_dilution else default_accuracy_m
                )
                fixes.append(
                    Fix(p.time, p.latitude, p.longitude, p.speed or 0.0, p.course, accuracy)
                )
    fixes.sort(key=lambda f: f.at)
    return fixes
