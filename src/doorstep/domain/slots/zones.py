"""Service zones (GeoJSON polygons per depot, checked with shapely) and pickup points.

A zone's geometry is refused with a 422 that names the problem: not a Polygon or
MultiPolygon, empty, a ring that is not closed or too short, a position that is not
``[lon, lat]`` (a latitude beyond ±90, or a polygon that holds its depot only when read as
``[lat, lon]``), or an invalid shape, with shapely's ``explain_validity`` (``Self-intersection
[7.42 43.73]``)."""

from __future__ import annotations

from typing import Any, TypeVar

import shapely
from shapely import Point, prepare
from shapely.errors import ShapelyError
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from doorstep.clock import Clock
from doorstep.domain.dispatch.models import Depot
from doorstep.domain.dispatch.resources import access_depot
from doorstep.domain.errors import Conflict, FieldError, NotFound, Unprocessable
from doorstep.domain.slots.models import PickupPoint, ServiceZone, SlotCalendar
from doorstep.domain.slots.schemas import (
    PickupPointIn,
    PickupPointOut,
    PickupPointPatch,
    ZoneIn,
    ZoneOut,
    ZonePatch,
)
from doorstep.ids import new_id

Row = TypeVar("Row", ServiceZone, PickupPoint, SlotCalendar)


def page(
    session: Session, stmt: Select[Row], id_col: Any, *, after: str | None, limit: int
) -> tuple[list[Row], str | None]:
    """One page ordered by id (ids are time-ordered); the cursor is the last id returned."""
    if after:
        stmt = stmt.where(id_col > after)
    rows = list(session.scalars(stmt.order_by(id_col).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (str(rows[-1].id) if more and rows else None)


def _bad(message: str, code: str = "invalid_geometry") -> Unprocessable:
    return Unprocessable(
        f"the zone's geometry is not valid: {message}",
        errors=[FieldError("geometry", message, code)],
    )


def _rings(geometry: dict[str, Any]) -> list[tuple[str, Any]]:
    kind = geometry.get("type")
    coords = geometry.get("coordinates")
    if kind not in ("Polygon", "MultiPolygon"):
        raise _bad(f"type must be Polygon or MultiPolygon, not {kind!r}", "wrong_type")
    if not isinstance(coords, list) or not coords:
        raise _bad("the polygon is empty: no coordinates", "empty")
    polygons = coords if kind == "MultiPolygon" else [coords]
    rings: list[tuple[str, Any]] = []
    for p, polygon in enumerate(polygons):
        if not isinstance(polygon, list) or not polygon:
            raise _bad(f"polygon {p} is empty", "empty")
        for r, ring in enumerate(polygon):
            label = f"ring {r}" + (f" of polygon {p}" if kind == "MultiPolygon" else "")
            rings.append((label, ring))
    return rings


def _check_positions(label: str, ring: Any) -> None:
    if not isinstance(ring, list) or not ring:
        raise _bad(f"{label} is empty", "empty")
    for pos in ring:
        if (
            not isinstance(pos, list | tuple)
            or len(pos) not in (2, 3)
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in pos)
        ):
            raise _bad(f"{label}: every position is a [lon, lat] pair of numbers", "position")
        lon, lat = pos[0], pos[1]
        if abs(lat) > 90:
            hint = " (lon and lat swapped? GeoJSON is [lon, lat])" if abs(lon) <= 90 else ""
            raise _bad(f"{label}: latitude {lat} is beyond ±90{hint}", "lon_lat_order")
        if abs(lon) > 180:
            raise _bad(f"{label}: longitude {lon} is beyond ±180", "position")
    if len(ring) < 4:
        raise _bad(f"{label} has {len(ring)} positions; a closed ring needs at least 4", "ring")
    if list(ring[0][:2]) != list(ring[-1][:2]):
        raise _bad(
            f"{label} is not closed: its first position {list(ring[0])} differs from its "
            f"last {list(ring[-1])}",
            "open_ring",
        )


def parse_geometry(geometry: dict[str, Any], depot: Depot | None = None) -> BaseGeometry:
    """The shapely shape of a zone's GeoJSON, or a 422 that says what is wrong with it."""
    for label, ring in _rings(geometry):
        _check_positions(label, ring)
    try:
        shp = shape(geometry)
    except (ValueError, TypeError, AttributeError, IndexError, ShapelyError) as exc:
        raise _bad(str(exc)) from exc
    if shp.is_empty:
        raise _bad("the polygon is empty", "empty")
    if not shp.is_valid:
        raise _bad(explain_validity(shp), "invalid_shape")
    if depot is not None:
        at = Point(depot.lon, depot.lat)
        swapped = shapely.transform(shp, lambda xy: xy[:, ::-1])
        if not shp.buffer(0.05).contains(at) and swapped.contains(at):
            raise _bad(
                "the polygon holds its depot only when its positions are read as [lat, lon]; "
                "GeoJSON positions are [lon, lat]",
                "lon_lat_order",
            )
    return shp


def zone_out(zone: ServiceZone) -> ZoneOut:
    return ZoneOut(
        id=zone.id,
        depot_id=zone.depot_id,
        name=zone.name,
        geometry=zone.geometry,
        bbox=zone.bbox,
        active=zone.active,
        created_at=zone.created_at,
        updated_at=zone.updated_at,
    )


def access_zone(session: Session, merchant_id: str, zone_id: str) -> ServiceZone:
    zone = session.get(ServiceZone, zone_id)
    if zone is None or zone.merchant_id != merchant_id:
        raise NotFound("no such zone")
    return zone


def create_zone(session: Session, clock: Clock, merchant_id: str, data: ZoneIn) -> ServiceZone:
    depot = access_depot(session, merchant_id, data.depot_id)
    shp = parse_geometry(data.geometry, depot)
    now = clock.now()
    zone = ServiceZone(
        id=new_id("zon", now),
        merchant_id=merchant_id,
        depot_id=depot.id,
        name=data.name,
        geometry=data.geometry,
        bbox=[round(v, 7) for v in shp.bounds],
        active=data.active,
        created_at=now,
        updated_at=now,
    )
    session.add(zone)
    session.flush()
    return zone


def update_zone(
    session: Session, clock: Clock, merchant_id: str, zone_id: str, data: ZonePatch
) -> ServiceZone:
    zone = access_zone(session, merchant_id, zone_id)
    if data.geometry is not None:
        shp = parse_geometry(data.geometry, access_depot(session, merchant_id, zone.depot_id))
        zone.geometry = data.geometry
        zone.bbox = [round(v, 7) for v in shp.bounds]
    if data.name is not None:
        zone.name = data.name
    if data.active is not None:
        zone.active = data.active
    zone.updated_at = clock.now()
    session.flush()
    return zone


def list_zones(
    session: Session, merchant_id: str, *, after: str | None = None, limit: int = 100
) -> tuple[list[ServiceZone], str | None]:
    stmt = select(ServiceZone).where(ServiceZone.merchant_id == merchant_id)
    return page(session, stmt, ServiceZone.id, after=after, limit=limit)


def delete_zone(session: Session, merchant_id: str, zone_id: str) -> None:
    """Delete a zone; 409 while calendars use it (deactivate it instead)."""
    zone = access_zone(session, merchant_id, zone_id)
    used = session.scalar(select(SlotCalendar.id).where(SlotCalendar.zone_id == zone.id).limit(1))
    if used is not None:
        raise Conflict("calendars use this zone; delete them or deactivate the zone")
    session.delete(zone)
    session.flush()


def zones_containing(
    session: Session, merchant_id: str, lat: float, lon: float
) -> list[ServiceZone]:
    """The merchant's active zones that hold the point (bounding box first, then shapely)."""
    at = Point(lon, lat)
    found = []
    for zone in session.scalars(
        select(ServiceZone).where(ServiceZone.merchant_id == merchant_id, ServiceZone.active)
    ):
        x0, y0, x1, y1 = zone.bbox or (-180, -90, 180, 90)
        if not (x0 <= lon <= x1 and y0 <= lat <= y1):
            continue
        shp = shape(zone.geometry)
        prepare(shp)
        if shp.covers(at):
            found.append(zone)
    return found


# --- Pickup points --------------------------------------------------------------------------


def pickup_point_out(point: PickupPoint) -> PickupPointOut:
    return PickupPointOut(
        id=point.id,
        name=point.name,
        kind=point.kind,
        address={
            "line1": point.address_line1,
            "city": point.city,
            "postal_code": point.postal_code,
            "country": point.country,
            "lat": point.lat,
            "lon": point.lon,
        },
        opening_hours=point.opening_hours,
        active=point.active,
    )


def access_pickup_point(session: Session, merchant_id: str, point_id: str) -> PickupPoint:
    point = session.get(PickupPoint, point_id)
    if point is None or point.merchant_id != merchant_id:
        raise NotFound("no such pickup point")
    return point


def create_pickup_point(
    session: Session, clock: Clock, merchant_id: str, data: PickupPointIn
) -> PickupPoint:
    now = clock.now()
    point = PickupPoint(
        id=new_id("pup", now),
        merchant_id=merchant_id,
        name=data.name,
        kind=data.kind,
        address_line1=data.address.line1,
        city=data.address.city,
        postal_code=data.address.postal_code,
        country=data.address.country,
        lat=data.address.lat,
        lon=data.address.lon,
        opening_hours=data.opening_hours or {},
        active=data.active,
        created_at=now,
    )
    session.add(point)
    session.flush()
    return point


def update_pickup_point(
    session: Session, merchant_id: str, point_id: str, data: PickupPointPatch
) -> PickupPoint:
    point = access_pickup_point(session, merchant_id, point_id)
    if data.name is not None:
        point.name = data.name
    if data.kind is not None:
        point.kind = data.kind
    if data.address is not None:
        point.address_line1 = data.address.line1
        point.city = data.address.city
        point.postal_code = data.address.postal_code
        point.country = data.address.country
        point.lat = data.address.lat
        point.lon = data.address.lon
    if data.opening_hours is not None:
        point.opening_hours = data.opening_hours
    if data.active is not None:
        point.active = data.active
    session.flush()
    return point


def list_pickup_points(
    session: Session,
    merchant_id: str,
    *,
    after: str | None = None,
    limit: int = 100,
    active_only: bool = False,
) -> tuple[list[PickupPoint], str | None]:
    stmt = select(PickupPoint).where(PickupPoint.merchant_id == merchant_id)
    if active_only:
        stmt = stmt.where(PickupPoint.active)
    return page(session, stmt, PickupPoint.id, after=after, limit=limit)
