"""Re-planning a published plan from where things stand now.

:func:`replan` reads where every driver is and what is already done, and lets the optimiser
redistribute the rest: stops made stay at the front of their route untouched, stops under way
stay fixed on their vehicle (the optimiser's ``fixed_jobs``), each vehicle starts from its
driver's latest position (or its last stop made) now, and a vehicle's previous stops are its
preferred ones, so as few as possible move. New orders of the day are added, cancelled or
rescheduled ones drop out, and the stops of dropped shifts are redistributed. The result is a
new draft whose ``changes`` say what moved; publishing it tells the drivers, and a route under
way stays under way (``publishing.hand_over_live_routes``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from doorstep.clock import Clock
from doorstep.db.engine import transaction
from doorstep.domain.accounts.models import Merchant
from doorstep.domain.dispatch.inputs import (
    DONE_STOP_STATUSES,
    DayInput,
    DoneStop,
    History,
    RouteStart,
    ShiftInput,
    day_shifts,
    default_service_s,
    drop_closed_shifts,
    due_orders,
    order_input,
    shift_input,
    split_located,
    unusable,
)
from doorstep.domain.dispatch.models import Driver, Plan, Shift, Stop, Vehicle
from doorstep.domain.dispatch.planning import compute_plan, save_plan, travel_provider
from doorstep.domain.dispatch.publishing import diff_plans
from doorstep.domain.dispatch.resources import access_depot
from doorstep.domain.dispatch.views import PlanView, load_plan, load_plan_view
from doorstep.domain.errors import Conflict, FieldError, NotFound, Unprocessable
from doorstep.domain.orders.location import point_of
from doorstep.domain.orders.models import Order
from doorstep.domain.orders.status import Status
from doorstep.domain.tracking.models import Position
from doorstep.routing.travel.base import LatLon, TravelTimeProvider
from doorstep.settings import Settings

# A driver's position is used as the re-planning start only if it is at most this old.
RECENT_POSITION = timedelta(minutes=15)
UNDER_WAY_STOP = frozenset({"en_route", "arrived"})
DONE_ORDER = frozenset({Status.DELIVERED, Status.DELIVERY_FAILED})
# Orders in the vehicle: they stay on it, where they are (a delayed one is still on board).
ON_BOARD = frozenset({Status.OUT_FOR_DELIVERY, Status.DELIVERY_DELAYED})


# --- Re-planning ----------------------------------------------------------------------------


def _latest_positions(
    session: Session, merchant_id: str, driver_ids: set[str], now: datetime
) -> dict[str, Position]:
    rows = session.scalars(
        select(Position)
        .where(
            Position.merchant_id == merchant_id,
            Position.driver_id.in_(driver_ids),
            Position.recorded_at >= now - RECENT_POSITION,
            Position.recorded_at <= now,
        )
        .order_by(Position.recorded_at.desc(), Position.id.desc())
    )
    latest: dict[str, Position] = {}
    for pos in rows:
        latest.setdefault(pos.driver_id, pos)
    return latest


def _done_stop(stop: Stop) -> DoneStop:
    return DoneStop(
        order_id=stop.order_id,
        status=stop.status,
        planned_arrival=stop.planned_arrival,
        planned_departure=stop.planned_departure,
        service_time_s=stop.service_time_s,
        load_weight_kg=stop.load_weight_kg,
        load_parcels=stop.load_parcels,
        distance_from_prev_m=stop.distance_from_prev_m,
        eta=stop.eta,
        actual_arrival=stop.actual_arrival,
        actual_departure=stop.actual_departure,
    )


def _replan_shifts(
    session: Session, merchant_id: str, parent: Plan, tz: ZoneInfo, dropped: set[str]
) -> list[tuple[Shift, Driver, Vehicle]]:
    """The day's shifts at the depot plus every shift the parent plan had routes for."""
    rows = {
        s.id: (s, d, v)
        for s, d, v in day_shifts(session, merchant_id, parent.depot_id, parent.date, tz)
    }
    missing = {r.shift_id for r in parent.routes} - rows.keys()
    if missing:
        for s, d, v in session.execute(
            select(Shift, Driver, Vehicle)
            .join(Driver, Driver.id == Shift.driver_id)
            .join(Vehicle, Vehicle.id == Shift.vehicle_id)
            .where(Shift.merchant_id == merchant_id, Shift.id.in_(missing))
        ).all():
            rows[s.id] = (s, d, v)
    unknown = [i for i, shift_id in enumerate(sorted(dropped)) if shift_id not in rows]
    if unknown:
        raise Unprocessable(
            "invalid re-plan",
            errors=[
                FieldError(f"dropped_shift_ids[{i}]", "not a shift of this plan's day", "not_found")
                for i in unknown
            ],
        )
    return sorted(rows.values(), key=lambda sdv: (sdv[0].start_at, sdv[0].id))


def load_replan_day(
    session: Session,
    clock: Clock,
    settings: Settings,
    merchant_id: str,
    parent: Plan,
    dropped: set[str],
) -> DayInput:
    """The day as it stands now, for re-planning the published ``parent``."""
    merchant = session.get(Merchant, merchant_id)
    if merchant is None:
        raise NotFound("no such merchant")
    tz = ZoneInfo(merchant.timezone)
    now = clock.now()
    today = now.astimezone(tz).date()
    if parent.date < today:
        raise Conflict("that day is over; it can no longer be re-planned")
    depot = access_depot(session, merchant_id, parent.depot_id)
    depot_point = LatLon(depot.lat, depot.lon)
    service = default_service_s(merchant, settings)

    vehicles: list[ShiftInput] = []
    idle: list[ShiftInput] = []
    skipped: list[dict[str, str]] = []
    on_parent = {r.shift_id for r in parent.routes}
    drivers: dict[str, str] = {}
    for shift, driver, vehicle in _replan_shifts(session, merchant_id, parent, tz, dropped):
        drivers[shift.id] = driver.name
        why = unusable(shift, driver, vehicle, now, frozenset(dropped))
        data = shift_input(shift, driver, vehicle)
        if why is None:
            vehicles.append(data)
        elif shift.id in on_parent:
            idle.append(data)
        else:
            skipped.append({"shift_id": shift.id, "reason": why})
    vehicle_ids = {s.shift_id for s in vehicles}

    located, unlocated = split_located(
        due_orders(session, merchant, parent.depot_id, parent.date, today)
    )
    due = {o.id: o for o in located}
    parent_ids = {s.order_id for r in parent.routes for s in r.stops}
    orders = {
        o.id: o
        for o in session.scalars(
            select(Order).where(Order.merchant_id == merchant_id, Order.id.in_(parent_ids))
        )
    }
    extra: dict[str, Order] = {}
    history: dict[str, History] = {}
    fixed: dict[str, list[str]] = {}
    initial: dict[str, list[str]] = {}
    stop_status: dict[str, str] = {}
    done_ids: set[str] = set()
    last_done: dict[str, Order] = {}
    for route in parent.routes:
        made: list[DoneStop] = []
        for stop in route.stops:
            order = orders[stop.order_id]
            status = Status(order.status)
            if stop.status == "failed" and status not in DONE_ORDER and order.id in due:
                # Rebooked for later today after the failed attempt: planned like any order
                # (a route holds one stop per order; the attempt stays on the parent plan).
                last_done[route.shift_id] = order
            elif stop.status in DONE_STOP_STATUSES or status in DONE_ORDER:
                made.append(_done_stop(stop))
                done_ids.add(order.id)
                last_done[route.shift_id] = order
            elif stop.status in UNDER_WAY_STOP or status in ON_BOARD:
                extra[order.id] = order
                if route.shift_id in vehicle_ids:
                    fixed.setdefault(route.shift_id, []).append(order.id)
                    stop_status[order.id] = (
                        stop.status if stop.status in UNDER_WAY_STOP else "planned"
                    )
                    initial.setdefault(route.shift_id, []).append(order.id)
            elif order.id in due and route.shift_id in vehicle_ids:
                initial.setdefault(route.shift_id, []).append(order.id)
        if made:
            share = (
                sum(d.distance_from_prev_m for d in made) / route.distance_m
                if route.distance_m
                else 0
            )
            # A started route's start is when the driver left, not when the plan said.
            began = route.started_at or route.start_at
            history[route.shift_id] = History(began, tuple(made), route.driving_s * share)

    breaks_taken: dict[str, str] = {}
    for route in parent.routes:
        meta = (parent.stats or {}).get("route_meta", {}).get(route.id, {})
        began = meta.get("break_start")
        if began and (meta.get("break_taken") or datetime.fromisoformat(began) <= now):
            breaks_taken[route.shift_id] = began

    positions = _latest_positions(session, merchant_id, {s.driver_id for s in vehicles}, now)
    # A route with every stop made whose planned return has passed is back at the depot.
    back = {
        r.shift_id
        for r in parent.routes
        if r.end_at is not None
        and r.end_at <= now
        and r.shift_id not in fixed
        and not initial.get(r.shift_id)
    }
    starts: dict[str, RouteStart] = {}
    for planned in vehicles:
        if (
            now <= planned.start_at
            and planned.shift_id not in history
            and planned.shift_id not in fixed
        ):
            continue  # not started yet: from the depot at the shift start
        pos = positions.get(planned.driver_id)
        if pos is not None:
            starts[planned.shift_id] = RouteStart(LatLon(pos.lat, pos.lon), now, "position")
        elif planned.shift_id in back:
            starts[planned.shift_id] = RouteStart(depot_point, now, "depot")
        elif planned.shift_id in last_done:
            o = last_done[planned.shift_id]
            starts[planned.shift_id] = RouteStart(LatLon(*point_of(o)), now, "stop")
        else:
            starts[planned.shift_id] = RouteStart(depot_point, now, "depot")

    pool = [o for o in [*due.values(), *extra.values()] if o.id not in done_ids]
    fixed_ids = {j for jobs in fixed.values() for j in jobs}
    preferred = {
        shift_id: frozenset(j for j in jobs if j not in fixed_ids)
        for shift_id, jobs in initial.items()
    }
    day = DayInput(
        merchant_id=merchant_id,
        depot_id=parent.depot_id,
        day=parent.date,
        tz=tz,
        depot=depot_point,
        orders=[
            order_input(o, service)
            for o in sorted({o.id: o for o in pool}.values(), key=lambda o: o.id)
        ],
        shifts=vehicles,
        idle_shifts=idle,
        starts=starts,
        fixed={k: tuple(v) for k, v in fixed.items()},
        preferred=preferred,
        initial=initial,
        history=history,
        stop_status=stop_status,
        skipped_shifts=skipped,
        breaks_taken=breaks_taken,
        opening_hours=depot.opening_hours or {},
        unlocated=unlocated,
    )
    # A vehicle still at the depot waits for it to open; one the hours leave no time gets no
    # work (it has none under way), and keeps an empty route if it had one.
    for closed in drop_closed_shifts(day, drivers):
        initial.pop(closed.shift_id, None)
        day.preferred.pop(closed.shift_id, None)
        if closed.shift_id in on_parent:
            day.idle_shifts.append(closed)
    return day


def replan(
    sessions: sessionmaker[Session],
    clock: Clock,
    settings: Settings,
    *,
    merchant_id: str,
    plan_id: str,
    dropped_shift_ids: Sequence[str] = (),
    time_limit_s: float | None = None,
    seed: int | None = None,
    provider: TravelTimeProvider | None = None,
    max_iterations: int | None = None,
    on_saved: Callable[[Session, PlanView], None] | None = None,
) -> PlanView:
    """A new draft for the published plan's day, from where things stand now. The optimiser
    runs between two short transactions, as for :func:`~.planning.create_plan` (and so does
    ``on_saved``)."""
    limit = time_limit_s if time_limit_s is not None else settings.plan_time_limit_s
    seed = settings.plan_seed if seed is None else seed
    if max_iterations is None:
        max_iterations = settings.plan_max_iterations
    dropped = set(dropped_shift_ids)
    with transaction(sessions) as session:
        parent = load_plan(session, merchant_id, plan_id)
        if parent.status != "published":
            raise Conflict(
                f"the plan is {parent.status}; only the published plan can be re-planned"
            )
        day = load_replan_day(session, clock, settings, merchant_id, parent, dropped)
    if not day.shifts:
        closed = [s["detail"] for s in day.skipped_shifts if s["reason"] == "depot_closed"]
        errors = [FieldError("date", detail, "depot_closed") for detail in closed] or [
            FieldError("dropped_shift_ids", "every shift of the day is dropped or over")
        ]
        raise Unprocessable("no shift is left to plan on", errors=errors)
    provider = provider or travel_provider(settings)
    draft = compute_plan(
        day,
        provider,
        time_limit_s=limit,
        seed=seed,
        max_iterations=max_iterations,
        buffer_s=settings.plan_window_buffer_s,
        buffer_cost=settings.plan_window_buffer_max_extra_cost,
    )
    draft.stats["dropped_shift_ids"] = sorted(dropped)
    with transaction(sessions) as session:
        parent = load_plan(session, merchant_id, plan_id)
        if parent.status != "published":
            raise Conflict("the plan was superseded while re-planning; re-plan again")
        plan = save_plan(
            session, clock, day, draft, seed=seed, time_limit_s=limit, parent_plan_id=parent.id
        )
        plan.stats = {
            **plan.stats,
            "changes": diff_plans(
                parent, plan, plan_references(session, merchant_id, parent, plan)
            ),
        }
        session.flush()
        view = load_plan_view(session, merchant_id, plan.id)
        if on_saved is not None:
            on_saved(session, view)
        return view


def plan_references(session: Session, merchant_id: str, *plans: Plan) -> dict[str, str]:
    """Order id -> reference for every stop of ``plans``."""
    ids = {s.order_id for p in plans for r in p.routes for s in r.stops}
    rows = session.execute(
        select(Order.id, Order.reference).where(Order.merchant_id == merchant_id, Order.id.in_(ids))
    )
    return {oid: ref for oid, ref in rows}
