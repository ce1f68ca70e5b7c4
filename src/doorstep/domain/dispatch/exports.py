"""Route exports: GeoJSON (RFC 7946), GPX 1.1 and a printable CSV manifest.

The loaders read one route (or a whole plan) of one merchant into plain ``RouteSheet`` data;
the renderers are pure functions of that data, so they are easy to test and reuse.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import gpxpy.gpx
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from doorstep.domain.accounts.models import Merchant
from doorstep.domain.dispatch.models import Depot, Driver, Plan, Route, Shift, Vehicle
from doorstep.domain.dispatch.views import rows_by_id
from doorstep.domain.errors import NotFound
from doorstep.domain.orders.location import point_of
from doorstep.domain.orders.models import Order

GENERATOR = "Doorstep"


@dataclass(frozen=True)
class SheetStop:
    sequence: int
    order_id: str
    reference: str
    status: str
    recipient_name: str
    recipient_phone: str | None
    address: str
    postal_code: str | None
    city: str
    lat: float
    lon: float
    window_start: datetime | None
    window_end: datetime | None
    planned_arrival: datetime | None
    planned_departure: datetime | None
    parcel_count: int
    weight_kg: float
    instructions: str | None


@dataclass(frozen=True)
class RouteSheet:
    route_id: str
    plan_id: str
    plan_date: str
    position: int
    timezone: str
    driver_name: str
    vehicle_name: str
    depot_name: str
    depot_lat: float
    depot_lon: float
    returns_to_depot: bool
    start_at: datetime | None
    end_at: datetime | None
    distance_m: float
    driving_s: float
    stops: list[SheetStop]
    # Road geometry as [[lon, lat], ...]; empty when straight-line travel times were used.
    geometry: list[list[float]] = field(default_factory=list)


def _sheet(
    route: Route,
    plan: Plan,
    orders: dict[str, Order],
    tz: str,
    depot: Depot,
    driver: Driver,
    vehicle: Vehicle,
    shift: Shift,
) -> RouteSheet:
    stops = []
    for stop in route.stops:
        order = orders[stop.order_id]
        stops.append(
            SheetStop(
                sequence=stop.sequence,
                order_id=order.id,
                reference=order.reference,
                status=order.status,
                recipient_name=order.recipient_name,
                recipient_phone=order.recipient_phone,
                address=" ".join(p for p in (order.address_line1, order.address_line2) if p),
                postal_code=order.postal_code,
                city=order.city,
                lat=point_of(order)[0],
                lon=point_of(order)[1],
                window_start=order.window_start,
                window_end=order.window_end,
                planned_arrival=stop.planned_arrival,
                planned_departure=stop.planned_departure,
                parcel_count=order.parcel_count,
                weight_kg=order.weight_kg,
                instructions=order.instructions,
            )
        )
    return RouteSheet(
        route_id=route.id,
        plan_id=plan.id,
        plan_date=plan.date.isoformat(),
        position=route.position,
        timezone=tz,
        driver_name=driver.name,
        vehicle_name=vehicle.name,
        depot_name=depot.name,
        depot_lat=depot.lat,
        depot_lon=depot.lon,
        returns_to_depot=shift.return_to_depot,
        start_at=route.start_at,
        end_at=route.end_at,
        distance_m=route.distance_m,
        driving_s=route.driving_s,
        stops=stops,
        geometry=list(route.geometry or []),
    )


def load_plan_sheets(session: Session, merchant_id: str, plan_id: str) -> list[RouteSheet]:
    """Every route of a plan of this merchant (404 for anyone else's plan)."""
    plan = session.scalar(
        select(Plan)
        .where(Plan.id == plan_id, Plan.merchant_id == merchant_id)
        .options(selectinload(Plan.routes).selectinload(Route.stops))
    )
    if plan is None:
        raise NotFound(f"no plan {plan_id}")
    return _sheets(session, merchant_id, plan, list(plan.routes))


def load_route_sheet(session: Session, merchant_id: str, route_id: str) -> RouteSheet:
    """One route of this merchant (404 for anyone else's route)."""
    route = session.scalar(
        select(Route)
        .where(Route.id == route_id, Route.merchant_id == merchant_id)
        .options(selectinload(Route.stops))
    )
    if route is None:
        raise NotFound(f"no route {route_id}")
    return _sheets(session, merchant_id, route.plan, [route])[0]


def _sheets(
    session: Session, merchant_id: str, plan: Plan, routes: list[Route]
) -> list[RouteSheet]:
    merchant = session.get(Merchant, merchant_id)
    tz = merchant.timezone if merchant is not None else "UTC"
    orders = rows_by_id(session, Order, merchant_id, (s.order_id for r in routes for s in r.stops))
    shifts = rows_by_id(session, Shift, merchant_id, (r.shift_id for r in routes))
    drivers = rows_by_id(session, Driver, merchant_id, (r.driver_id for r in routes))
    vehicles = rows_by_id(session, Vehicle, merchant_id, (r.vehicle_id for r in routes))
    depot = session.get(Depot, plan.depot_id)
    if depot is None:  # pragma: no cover - foreign key guarantees it
        raise NotFound(f"no depot {plan.depot_id}")
    return [
        _sheet(
            r,
            plan,
            orders,
            tz,
            depot,
            drivers[r.driver_id],
            vehicles[r.vehicle_id],
            shifts[r.shift_id],
        )
        for r in routes
    ]


def _local(value: datetime | None, tz: str) -> str:
    return value.astimezone(ZoneInfo(tz)).isoformat(timespec="minutes") if value else ""


def _hhmm(value: datetime | None, tz: str) -> str:
    return value.astimezone(ZoneInfo(tz)).strftime("%H:%M") if value else ""


def _path(sheet: RouteSheet) -> list[list[float]]:
    """The line to draw: the road geometry, or straight legs depot → stops (→ depot)."""
    if sheet.geometry:
        return [[round(lon, 6), round(lat, 6)] for lon, lat in sheet.geometry]
    line = [[sheet.depot_lon, sheet.depot_lat]] + [[s.lon, s.lat] for s in sheet.stops]
    if sheet.returns_to_depot and sheet.stops:
        line.append([sheet.depot_lon, sheet.depot_lat])
    return [[round(lon, 6), round(lat, 6)] for lon, lat in line]


def route_features(sheet: RouteSheet) -> list[dict[str, Any]]:
    """GeoJSON features of one route: its line, then one point per stop (lon/lat order)."""
    features: list[dict[str, Any]] = [
        {
            "type": "Feature",
            "geometry": {"type": "LineString", "coordinates": _path(sheet)},
            "properties": {
                "kind": "route",
                "route_id": sheet.route_id,
                "position": sheet.position,
                "driver": sheet.driver_name,
                "vehicle": sheet.vehicle_name,
                "stops": len(sheet.stops),
                "distance_m": round(sheet.distance_m),
                "driving_s": round(sheet.driving_s),
                "road_geometry": bool(sheet.geometry),
            },
        }
    ]
    for stop in sheet.stops:
        features.append(
            {
                "type": "Feature",
                "geometry": {
                    "type": "Point",
                    "coordinates": [round(stop.lon, 6), round(stop.lat, 6)],
                },
                "properties": {
                    "kind": "stop",
                    "route_id": sheet.route_id,
                    "sequence": stop.sequence,
                    "order_id": stop.order_id,
                    "reference": stop.reference,
                    "status": stop.status,
                    "address": stop.address,
                    "city": stop.city,
                    "window_start": _local(stop.window_start, sheet.timezone),
                    "window_end": _local(stop.window_end, sheet.timezone),
                    "planned_arrival": _local(stop.planned_arrival, sheet.timezone),
                    "parcels": stop.parcel_count,
                    "weight_kg": stop.weight_kg,
                },
            }
        )
    return features


def to_geojson(sheets: list[RouteSheet]) -> dict[str, Any]:
    """A FeatureCollection (RFC 7946) of the depot, every route line and every stop."""
    features: list[dict[str, Any]] = []
    if sheets:
        first = sheets[0]
        features.append(
            {
                "type": "Feature",
                "geometry": {
                    "type": "Point",
                    "coordinates": [round(first.depot_lon, 6), round(first.depot_lat, 6)],
                },
                "properties": {"kind": "depot", "name": first.depot_name},
            }
        )
    for sheet in sheets:
        features.extend(route_features(sheet))
    return {"type": "FeatureCollection", "features": features}


def to_gpx(sheet: RouteSheet) -> str:
    """GPX 1.1: a waypoint per stop and a route through them (along the roads when known)."""
    gpx = gpxpy.gpx.GPX()
    gpx.creator = GENERATOR
    gpx.name = f"{sheet.plan_date} {sheet.driver_name} ({sheet.vehicle_name})"
    gpx.description = f"{len(sheet.stops)} stops from {sheet.depot_name}"
    gpx.waypoints.append(
        gpxpy.gpx.GPXWaypoint(sheet.depot_lat, sheet.depot_lon, name=sheet.depot_name, type="depot")
    )
    for stop in sheet.stops:
        window = (
            f"{_hhmm(stop.window_start, sheet.timezone)}-{_hhmm(stop.window_end, sheet.timezone)}"
        )
        gpx.waypoints.append(
            gpxpy.gpx.GPXWaypoint(
                stop.lat,
                stop.lon,
                time=stop.planned_arrival,
                name=f"{stop.sequence}. {stop.reference}",
                description=f"{stop.address}, {stop.city}; window {window}",
                comment=stop.instructions,
                type="stop",
            )
        )
    rte = gpxpy.gpx.GPXRoute(name=gpx.name)
    if sheet.geometry:
        for lon, lat in sheet.geometry:
            rte.points.append(gpxpy.gpx.GPXRoutePoint(lat, lon))
    else:
        rte.points.append(
            gpxpy.gpx.GPXRoutePoint(sheet.depot_lat, sheet.depot_lon, name=sheet.depot_name)
        )
        for stop in sheet.stops:
            rte.points.append(
                gpxpy.gpx.GPXRoutePoint(
                    stop.lat, stop.lon, name=f"{stop.sequence}. {stop.reference}"
                )
            )
        if sheet.returns_to_depot and sheet.stops:
            rte.points.append(
                gpxpy.gpx.GPXRoutePoint(sheet.depot_lat, sheet.depot_lon, name=sheet.depot_name)
            )
    gpx.routes.append(rte)
    return gpx.to_xml(version="1.1")


# Every row names its route (date, driver, vehicle, the local time it leaves the depot), so a
# printed page or a pasted row still says whose it is, and the file stays one rectangular table.
MANIFEST_COLUMNS = [
    "date",
    "driver",
    "vehicle",
    "route_start",
    "stop",
    "planned_arrival",
    "window",
    "reference",
    "recipient",
    "phone",
    "address",
    "postal_code",
    "city",
    "parcels",
    "weight_kg",
    "instructions",
    "status",
]


def to_manifest_csv(sheet: RouteSheet) -> str:
    """A printable manifest (header row, local times). Opens cleanly in spreadsheets. Each row
    names the route's date, driver, vehicle and start time (leaving the depot)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(MANIFEST_COLUMNS)
    route = [
        sheet.plan_date,
        sheet.driver_name,
        sheet.vehicle_name,
        _hhmm(sheet.start_at, sheet.timezone),
    ]
    for stop in sheet.stops:
        window = (
            f"{_hhmm(stop.window_start, sheet.timezone)}-{_hhmm(stop.window_end, sheet.timezone)}"
        )
        writer.writerow(
            [
                *route,
                stop.sequence,
                _hhmm(stop.planned_arrival, sheet.timezone),
                window if stop.window_start else "",
                stop.reference,
                stop.recipient_name,
                stop.recipient_phone or "",
                stop.address,
                stop.postal_code or "",
                stop.city,
                stop.parcel_count,
                f"{stop.weight_kg:g}",
                stop.instructions or "",
                stop.status,
            ]
        )
    return out.getvalue()
