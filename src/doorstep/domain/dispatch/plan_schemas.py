"""How plans are answered: routes with their stops in order, totals, violations and the orders
left unassigned. Times are shown in the merchant's timezone; the functions read a loaded
:class:`~.views.PlanView` and never touch the database."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field

from doorstep.domain.dispatch.models import Route, Stop
from doorstep.domain.dispatch.recipient_changes import RecipientChangeOut
from doorstep.domain.dispatch.schemas import local_time, local_time_req
from doorstep.domain.dispatch.views import PlanView


class StopWindowOut(BaseModel):
    """The promised delivery window."""

    start: datetime
    end: datetime


class StopAddressOut(BaseModel):
    """Where the stop is."""

    line1: str
    line2: str | None
    city: str
    postal_code: str | None
    country: str


class StopOut(BaseModel):
    """One stop of a route: the order, its window, planned times and the load after it."""

    id: str
    sequence: int
    order_id: str
    reference: str
    order_status: str
    status: str
    address: StopAddressOut
    lat: float
    lon: float
    window: StopWindowOut | None
    planned_arrival: datetime | None
    planned_departure: datetime | None
    service_time_s: int
    load_weight_kg: float
    load_parcels: int
    distance_from_prev_m: float
    recipient_change: RecipientChangeOut | None = Field(
        None,
        description="A driver's route only: what the recipient changed (redirect, hold, "
        "new instructions)",
    )


class PersonRef(BaseModel):
    """A driver by id and name."""

    id: str
    name: str


class VehicleRef(BaseModel):
    """A vehicle by id, name and profile."""

    id: str
    name: str
    profile: str


class RouteTotals(BaseModel):
    """A route's figures: stops, distance, driving time, duration and starting load."""

    stops: int
    distance_m: float
    driving_s: float
    duration_s: float
    load_weight_kg: float
    load_parcels: int


class RouteOut(BaseModel):
    """One shift's route: stops in order, totals and what it breaks (``violations``)."""

    id: str
    plan_id: str
    position: int
    status: str
    shift_id: str
    driver: PersonRef
    vehicle: VehicleRef
    start_at: datetime | None
    end_at: datetime | None
    break_start: datetime | None
    totals: RouteTotals
    violations: list[dict[str, Any]]
    stops: list[StopOut]
    version: int


class UnassignedOut(BaseModel):
    """An order the plan leaves out, with the reason and a sentence to act on."""

    order_id: str
    reference: str
    reason: str
    detail: str
    candidates: list[dict[str, Any]] = Field(
        default_factory=list,
        description="needs_location: places the address may be ({lat, lon, precision, label})",
    )


class PlanSummaryOut(BaseModel):
    """A plan without its routes (for lists)."""

    id: str
    depot_id: str
    date: date
    status: str
    parent_plan_id: str | None
    seed: int
    time_limit_s: float
    travel_provider: str
    created_at: datetime
    published_at: datetime | None
    route_count: int
    stop_count: int
    unassigned_count: int
    stats: dict[str, Any]


class PlanPage(BaseModel):
    """One page of plans, newest first; pass ``next_cursor`` as ``cursor`` for the next."""

    data: list[PlanSummaryOut]
    next_cursor: str | None
    has_more: bool


class PlanOut(PlanSummaryOut):
    """A plan with its routes, stops, unassigned orders and (re-plans) what changed."""

    changes: dict[str, Any] | None
    routes: list[RouteOut]
    unassigned: list[UnassignedOut]


class DriverRouteOut(BaseModel):
    """A driver's published routes of a day."""

    driver: PersonRef
    date: date
    routes: list[RouteOut]


def _stop_out(stop: Stop, view: PlanView, change: RecipientChangeOut | None = None) -> StopOut:
    order = view.orders[stop.order_id]
    window = None
    if order.window_start is not None and order.window_end is not None:
        window = StopWindowOut(
            start=local_time_req(order.window_start, view.tz),
            end=local_time_req(order.window_end, view.tz),
        )
    return StopOut(
        id=stop.id,
        sequence=stop.sequence,
        order_id=order.id,
        reference=order.reference,
        order_status=order.status,
        status=stop.status,
        address=StopAddressOut(
            line1=order.address_line1,
            line2=order.address_line2,
            city=order.city,
            postal_code=order.postal_code,
            country=order.country,
        ),
        lat=order.lat,
        lon=order.lon,
        window=window,
        planned_arrival=local_time(stop.planned_arrival, view.tz),
        planned_departure=local_time(stop.planned_departure, view.tz),
        service_time_s=stop.service_time_s,
        load_weight_kg=stop.load_weight_kg,
        load_parcels=stop.load_parcels,
        distance_from_prev_m=stop.distance_from_prev_m,
        recipient_change=change,
    )


def route_out(
    route: Route, view: PlanView, changes: dict[str, RecipientChangeOut] | None = None
) -> RouteOut:
    """The answer for one route of a loaded plan (with the recipients' ``changes`` by order id
    for a driver's route)."""
    driver = view.drivers[route.driver_id]
    vehicle = view.vehicles[route.vehicle_id]
    meta = view.plan.stats.get("route_meta", {}).get(route.id, {})
    break_start = meta.get("break_start")
    duration = 0.0
    if route.start_at is not None and route.end_at is not None:
        duration = (route.end_at - route.start_at).total_seconds()
    return RouteOut(
        id=route.id,
        plan_id=route.plan_id,
        position=route.position,
        status=route.status,
        shift_id=route.shift_id,
        driver=PersonRef(id=driver.id, name=driver.name),
        vehicle=VehicleRef(id=vehicle.id, name=vehicle.name, profile=vehicle.profile),
        start_at=local_time(route.start_at, view.tz),
        end_at=local_time(route.end_at, view.tz),
        break_start=local_time(datetime.fromisoformat(break_start), view.tz)
        if break_start
        else None,
        totals=RouteTotals(
            stops=len(route.stops),
            distance_m=route.distance_m,
            driving_s=route.driving_s,
            duration_s=duration,
            load_weight_kg=route.load_weight_kg,
            load_parcels=route.load_parcels,
        ),
        violations=list(route.violations or []),
        stops=[_stop_out(stop, view, (changes or {}).get(stop.order_id)) for stop in route.stops],
        version=route.version,
    )


def _public_stats(stats: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in stats.items() if k not in ("route_meta", "changes")}


def plan_summary_out(view: PlanView) -> PlanSummaryOut:
    """The list entry for a loaded plan."""
    plan = view.plan
    return PlanSummaryOut(
        id=plan.id,
        depot_id=plan.depot_id,
        date=plan.date,
        status=plan.status,
        parent_plan_id=plan.parent_plan_id,
        seed=plan.seed,
        time_limit_s=plan.time_limit_s,
        travel_provider=plan.travel_provider,
        created_at=local_time_req(plan.created_at, view.tz),
        published_at=local_time(plan.published_at, view.tz),
        route_count=len(plan.routes),
        stop_count=sum(len(r.stops) for r in plan.routes),
        unassigned_count=len(plan.unassigned or []),
        stats=_public_stats(plan.stats or {}),
    )


def plan_out(view: PlanView) -> PlanOut:
    """The full answer for a loaded plan."""
    summary = plan_summary_out(view)
    return PlanOut(
        **summary.model_dump(),
        changes=(view.plan.stats or {}).get("changes"),
        routes=[route_out(route, view) for route in view.plan.routes],
        unassigned=[UnassignedOut(**u) for u in view.plan.unassigned or []],
    )
