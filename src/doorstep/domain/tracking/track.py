"""The driven track of a route: its stored positions in the device's time order, as GeoJSON
(RFC 7946, lon/lat) or GPX 1.1. Merchant-scoped: another merchant's route is a 404."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import gpxpy.gpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from doorstep.domain.dispatch.models import Driver, Route
from doorstep.domain.errors import NotFound
from doorstep.domain.tracking.models import Position

__all__ = ["Track", "TrackPoint", "load_track", "track_geojson", "track_gpx"]

MAX_POINTS = 200_000  # a day at one fix a second is 86,400


@dataclass(frozen=True)
class TrackPoint:
    recorded_at: datetime
    lat: float
    lon: float
    altitude_m: float | None
    speed_mps: float | None


@dataclass(frozen=True)
class Track:
    route_id: str
    driver_id: str
    driver_name: str
    points: list[TrackPoint]


def load_track(session: Session, merchant_id: str, route_id: str) -> Track:
    row = session.execute(
        select(Route.id, Route.driver_id, Driver.name)
        .join(Driver, Driver.id == Route.driver_id)
        .where(Route.id == route_id, Route.merchant_id == merchant_id)
    ).first()
    if row is None:
        raise NotFound(f"route {route_id} not found")
    points = [
        TrackPoint(p.recorded_at, p.lat, p.lon, p.altitude_m, p.speed_mps)
        for p in session.execute(
            select(
                Position.recorded_at,
                Position.lat,
                Position.lon,
                Position.altitude_m,
                Position.speed_mps,
            )
            .where(Position.route_id == route_id, Position.merchant_id == merchant_id)
            .order_by(Position.recorded_at, Position.id)
            .limit(MAX_POINTS)
        )
    ]
    return Track(route_id=row[0], driver_id=row[1], driver_name=row[2], points=points)


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def track_geojson(track: Track) -> dict[str, Any]:
    """A Feature: a LineString of the positions (a Point for one, no geometry for none), with
    ``coordTimes`` (one ISO 8601 time per position, the convention of togeojson/Mapbox)."""
    coords = [[p.lon, p.lat] for p in track.points]
    geometry: dict[str, Any] | None
    if len(coords) >= 2:
        geometry = {"type": "LineString", "coordinates": coords}
    elif coords:
        geometry = {"type": "Point", "coordinates": coords[0]}
    else:
        geometry = None
    times = [_iso(p.recorded_at) for p in track.points]
    return {
        "type": "Feature",
        "id": track.route_id,
        "geometry": geometry,
        "properties": {
            "kind": "track",
            "route_id": track.route_id,
            "driver_id": track.driver_id,
            "driver": track.driver_name,
            "points": len(coords),
            "start": times[0] if times else None,
            "end": times[-1] if times else None,
            "coordTimes": times,
            "speeds_mps": [p.speed_mps for p in track.points],
        },
    }


def track_gpx(track: Track) -> str:
    """A GPX 1.1 document with one track of one segment, each point with its time."""
    gpx = gpxpy.gpx.GPX()
    gpx.creator = "Doorstep"
    trk = gpxpy.gpx.GPXTrack(name=f"{track.driver_name} · route {track.route_id}")
    segment = gpxpy.gpx.GPXTrackSegment()
    for p in track.points:
        segment.points.append(
            gpxpy.gpx.GPXTrackPoint(
                latitude=p.lat, longitude=p.lon, elevation=p.altitude_m, time=p.recorded_at
            )
        )
    trk.segments.append(segment)
    gpx.tracks.append(trk)
    return gpx.to_xml(version="1.1")
