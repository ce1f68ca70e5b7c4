"""Moving one stop by hand, on a draft or a published plan.

Only the routes the move touches are recomputed (:func:`retime`, through the same
route timing the planner persists the optimiser's routes with); whatever the move breaks (a late
arrival, too much load, the shift's end, a missing skill, a parcel not on board a van that has
left) is stored as the routes' ``violations`` and shown in the answer, never hidden. On a
published plan the drivers get ``route.stop_moved`` events and recipients whose planned time
moved get ``delivery.rescheduled``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from doorstep.clock import Clock
from doorstep.domain.accounts.models import Merchant
from doorstep.domain.dispatch.inputs import (
    DONE_STOP_STATUSES,
    DayInput,
    OrderInput,
    RouteStart,
    ShiftInput,
    default_service_s,
    order_input,
    shift_input,
    starts_away,
)
from doorstep.domain.dispatch.models import Driver, Plan, Route, Shift, Stop, Vehicle
from doorstep.domain.dispatch.planning import (
    leave_windows,
    order_job,
    travel_matrices,
    travel_provider,
    vehicle_spec,
)
from doorstep.domain.dispatch.publishing import announce_planned_times, diff_plans
from doorstep.domain.dispatch.replanning import plan_references
from doorstep.domain.dispatch.resources import access_depot
from doorstep.domain.dispatch.views import load_plan
from doorstep.domain.errors import Actor, Conflict, FieldError, NotFound, Unprocessable
from doorstep.domain.orders.events import append_event
from doorstep.domain.orders.models import Order
from doorstep.domain.orders.status import PLANNABLE, Status
from doorstep.ids import new_id
from doorstep.routing.route_timing import AUTO_BREAK, TimedRoute, time_route
from doorstep.routing.travel.base import LatLon, TravelTimeProvider
from doorstep.settings import Settings


def _locked(route: Route) -> int:
    """How many leading stops are made or under way (they cannot move, nor be jumped)."""
    count = 0
    for stop in route.stops:
        if stop.status == "planned":
            break
        count += 1
    return count


def _done(route: Route) -> int:
    count = 0
    for stop in route.stops:
        if stop.status not in DONE_STOP_STATUSES:
            break
        count += 1
    return count


def retime(
    route: Route,
    plan: Plan,
    day: DayInput,
    shift: ShiftInput,
    orders: dict[str, OrderInput],
    provider: TravelTimeProvider,
) -> TimedRoute:
    """Recompute a route's remaining stops in their current order and write the result on the
    rows: planned times, loads, distances, totals and violations."""
    meta = dict(plan.stats.get("route_meta", {}).get(route.id, {}))
    done = _done(route)
    remaining = route.stops[done:]
    start = _planned_start(meta) or RouteStart(day.depot, shift.start_at, "depot")
    if done:
        last = route.stops[done - 1]
        left = last.actual_departure or last.planned_departure or start.at
        if left >= start.at:
            o = orders[last.order_id]
            start = RouteStart(o.point, left, "stop")
    points = [day.depot, start.point] + [orders[s.order_id].point for s in remaining]
    matrix = travel_matrices(provider, points, [shift.profile]).by_profile[shift.profile]
    route_day = replace(day, starts={shift.shift_id: start})
    vehicle = vehicle_spec(shift, route_day, 1)
    horizon = max(86_400, vehicle.shift_end_s)
    jobs = [
        order_job(orders[s.order_id], 2 + i, day.epoch, horizon) for i, s in enumerate(remaining)
    ]
    sim = time_route(
        vehicle,
        jobs,
        matrix.durations_s,
        matrix.distances_m,
        break_after=_break_after(meta),
        late_start=start.kind == "depot" and not done and _locked(route) == 0,
        leave_within=leave_windows(shift, route_day),
        labels={o.order_id: o.reference for o in orders.values()},
    )
    epoch = day.epoch
    for stop, s in zip(remaining, sim.stops, strict=True):
        stop.planned_arrival = epoch + timedelta(seconds=s.start_s)
        stop.planned_departure = epoch + timedelta(seconds=s.departure_s)
        stop.service_time_s = s.departure_s - s.start_s
        stop.load_weight_kg = s.load_after[0] / 1000
        stop.load_parcels = s.load_after[1]
        stop.distance_from_prev_m = float(s.distance_from_prev)
    done_stops = route.stops[:done]
    done_m = sum(s.distance_from_prev_m for s in done_stops)
    done_s = route.driving_s * done_m / route.distance_m if route.distance_m else 0.0
    route.distance_m = done_m + sim.distance
    route.driving_s = done_s + sim.driving_s
    route.load_weight_kg = sim.load_start[0] / 1000
    route.load_parcels = sim.load_start[1]
    unloaded = set(meta.get("not_on_board", []))
    route.violations = sim.violations + [
        {
            "type": "not_on_board",
            "order_id": stop.order_id,
            "reference": orders[stop.order_id].reference,
            "stop": done + n,
            "detail": (
                f"stop {done + n} ({orders[stop.order_id].reference}) is not on board: the "
                "vehicle left the depot without it; hand it over or re-plan"
            ),
        }
        for n, stop in enumerate(remaining, start=1)
        if stop.order_id in unloaded
    ]
    if not done:
        route.start_at = epoch + timedelta(seconds=sim.start_s)
    route.end_at = epoch + timedelta(seconds=sim.end_s) if sim.stops else route.start_at
    route.version += 1
    if provider.name != "straight" and remaining:
        path = points[1:] + ([day.depot] if shift.return_to_depot else [])
        route.geometry = [[p.lon, p.lat] for p in provider.path(path, shift.profile)]
    meta["done"] = done
    if not meta.get("break_taken"):
        meta["break_after"] = sim.break_after
        meta["break_start"] = (
            (epoch + timedelta(seconds=sim.break_start_s)).isoformat()
            if sim.break_start_s is not None
            else None
        )
    route_meta = dict(plan.stats.get("route_meta", {}))
    route_meta[route.id] = meta
    plan.stats = {**plan.stats, "route_meta": route_meta}
    return sim


def _rebase(meta: dict[str, Any], done: int) -> None:
    """Count the break position from the route's current first stop still to make: stops made
    since the route was last computed come off it, and a break they passed was taken."""
    k = meta.get("break_after")
    was = int(meta.get("done", 0))
    if k is not None and done != was:
        k -= done - was
        if k < 0:
            meta["break_taken"] = True
            k = None
    meta["break_after"] = k
    meta["done"] = done


def _break_after(meta: dict[str, Any]) -> int | None:
    if meta.get("break_taken"):
        return None
    k = meta.get("break_after")
    return int(k) if k is not None else AUTO_BREAK


def _shift_break(meta: dict[str, Any], removed_at: int | None, inserted_at: int | None) -> None:
    """Keep the break after the same stops when one is taken out or put in before it."""
    k = meta.get("break_after")
    if k is None:
        return
    if removed_at is not None and removed_at < k:
        k -= 1
    if inserted_at is not None and inserted_at < k:
        k += 1
    meta["break_after"] = k


def move_stop(
    session: Session,
    clock: Clock,
    settings: Settings,
    merchant_id: str,
    plan_id: str,
    *,
    order_id: str,
    to_route_id: str,
    position: int,
    actor: Actor,
    provider: TravelTimeProvider | None = None,
    join: bool = False,
) -> None:
    """Move an order's stop (or an unassigned order) to ``position`` on a route of a draft or
    published plan, then recompute the routes it touches. A failed attempt's stop is history
    and never moves: the order gets a new stop. With ``join`` the order need not be on the plan
    yet (a recipient's rebooking into the day). Callers that show the plan load its view
    (``views.load_plan_view``); a rebooking does not build a whole day's view nobody reads."""
    plan = load_plan(session, merchant_id, plan_id)
    if plan.status not in ("draft", "published"):
        raise Conflict(f"the plan is {plan.status}; it can no longer change")
    dest = next((r for r in plan.routes if r.id == to_route_id), None)
    if dest is None:
        raise NotFound("no such route on this plan")
    source = next((r for r in plan.routes for s in r.stops if _live_stop(s, order_id)), None)
    waiting = next((u for u in plan.unassigned or [] if u["order_id"] == order_id), None)
    if source is None and waiting is None and not join:
        raise NotFound("the order is not on this plan")
    affected = [dest] if source is None or source.id == dest.id else [source, dest]
    order_rows = {
        o.id: o
        for o in session.scalars(
            select(Order).where(
                Order.merchant_id == merchant_id,
                Order.id.in_({s.order_id for r in affected for s in r.stops} | {order_id}),
            )
        )
    }
    order = order_rows[order_id]
    route_meta = {k: dict(v) for k, v in plan.stats.get("route_meta", {}).items()}
    for route in affected:
        _rebase(route_meta.setdefault(route.id, {}), _done(route))

    if source is not None:
        index = next(i for i, s in enumerate(source.stops) if _live_stop(s, order_id))
        stop = source.stops[index]
        if stop.status != "planned":
            raise Conflict("the stop is made or under way; it cannot move")
        before = {s.order_id: s.planned_arrival for r in affected for s in r.stops}
        source.stops.remove(stop)
        _shift_break(route_meta.setdefault(source.id, {}), index - _done(source), None)
    else:
        if Status(order.status) not in PLANNABLE:
            raise Conflict(f"the order is {order.status}; it cannot be planned")
        before = {s.order_id: s.planned_arrival for r in affected for s in r.stops}
        stop = Stop(
            id=new_id("stp", clock.now()),
            merchant_id=merchant_id,
            order_id=order_id,
            status="planned",
            service_time_s=0,
        )
        plan.unassigned = [u for u in plan.unassigned if u["order_id"] != order_id]
    lo, hi = _locked(dest), len(dest.stops)
    if not lo <= position <= hi:
        raise Unprocessable(
            "invalid move",
            errors=[FieldError("position", f"must be between {lo} and {hi} on this route")],
        )
    dest.stops.insert(position, stop)
    _shift_break(route_meta.setdefault(dest.id, {}), None, position - _done(dest))
    for route in affected:
        for sequence, s in enumerate(route.stops, start=1):
            s.sequence = sequence
    plan.stats = {**plan.stats, "route_meta": route_meta}

    day, shifts, inputs = _move_inputs(session, settings, plan, affected, order_rows)
    _note_unloaded(route_meta, source, dest, order_id, day.depot)
    plan.stats = {**plan.stats, "route_meta": route_meta}
    provider = provider or travel_provider(settings)
    for route in affected:
        retime(route, plan, day, shifts[route.shift_id], inputs, provider)
    _refresh_stats(session, merchant_id, plan)
    session.flush()
    if plan.status == "published":
        _announce_move(session, clock, actor, plan, source, dest, order, position)
        announce_planned_times(session, clock, actor, plan, affected, order_rows, before)
    session.flush()


def _live_stop(stop: Stop, order_id: str) -> bool:
    """The order's stop still to make or under way (not a failed attempt kept as history)."""
    return stop.order_id == order_id and stop.status != "failed"


def _planned_start(meta: dict[str, Any]) -> RouteStart | None:
    """Where and when the plan had the route start (its ``route_meta``), if it says."""
    start = meta.get("start")
    if not start:
        return None
    return RouteStart(
        LatLon(start["lat"], start["lon"]), datetime.fromisoformat(start["at"]), start["kind"]
    )


def _left_depot(route: Route, meta: dict[str, Any], depot: LatLon) -> bool:
    """Whether the route's vehicle has left the depot: a stop is made or under way, or it
    starts away from the depot (the rule re-planning uses, ``DayInput.is_out``)."""
    start = _planned_start(meta)
    return bool(_locked(route)) or (start is not None and starts_away(start, depot))


def _note_unloaded(
    route_meta: dict[str, dict[str, Any]],
    source: Route | None,
    dest: Route,
    order_id: str,
    depot: LatLon,
) -> None:
    """Remember a stop moved by hand onto a vehicle that has left the depot: its parcel is not
    on board, which the route shows as a violation until a re-plan takes the hand-over as
    done. A stop leaving a route takes its note along."""
    if source is not None and source.id == dest.id:
        return
    if source is not None:
        src = route_meta.setdefault(source.id, {})
        src["not_on_board"] = [o for o in src.get("not_on_board", []) if o != order_id]
    if _left_depot(dest, route_meta.get(dest.id, {}), depot):
        meta = route_meta.setdefault(dest.id, {})
        meta["not_on_board"] = sorted({*meta.get("not_on_board", []), order_id})


def _move_inputs(
    session: Session, settings: Settings, plan: Plan, routes: list[Route], orders: dict[str, Order]
) -> tuple[DayInput, dict[str, ShiftInput], dict[str, OrderInput]]:
    merchant = session.get(Merchant, plan.merchant_id)
    assert merchant is not None
    depot = access_depot(session, plan.merchant_id, plan.depot_id)
    rows = session.execute(
        select(Shift, Driver, Vehicle)
        .join(Driver, Driver.id == Shift.driver_id)
        .join(Vehicle, Vehicle.id == Shift.vehicle_id)
        .where(Shift.merchant_id == plan.merchant_id, Shift.id.in_({r.shift_id for r in routes}))
    ).all()
    shifts = {s.id: shift_input(s, d, v) for s, d, v in rows}
    service = default_service_s(merchant, settings)
    inputs = {oid: order_input(o, service) for oid, o in orders.items()}
    day = DayInput(
        merchant_id=plan.merchant_id,
        depot_id=plan.depot_id,
        day=plan.date,
        tz=ZoneInfo(merchant.timezone),
        depot=LatLon(depot.lat, depot.lon),
        orders=[],
        shifts=list(shifts.values()),
        opening_hours=depot.opening_hours or {},
    )
    return day, shifts, inputs


def _refresh_stats(session: Session, merchant_id: str, plan: Plan) -> None:
    stats = dict(plan.stats)
    stats["distance_m"] = sum(r.distance_m for r in plan.routes)
    stats["driving_s"] = sum(r.driving_s for r in plan.routes)
    stats["planned"] = sum(1 for r in plan.routes for s in r.stops if s.status == "planned")
    stats["unassigned"] = len(plan.unassigned or [])
    stats["feasible"] = not any(r.violations for r in plan.routes) and stats.get("feasible", True)
    stats["manual_moves"] = int(stats.get("manual_moves", 0)) + 1
    if plan.parent_plan_id is not None:
        parent = load_plan(session, merchant_id, plan.parent_plan_id)
        stats["changes"] = diff_plans(
            parent, plan, plan_references(session, merchant_id, parent, plan)
        )
    plan.stats = stats


def _announce_move(
    session: Session,
    clock: Clock,
    actor: Actor,
    plan: Plan,
    source: Route | None,
    dest: Route,
    order: Order,
    position: int,
) -> None:
    """``route.stop_moved`` on each route the stop left or joined (``route.stop_added`` when it
    comes from the unassigned list)."""
    data = {
        "plan_id": plan.id,
        "order_id": order.id,
        "reference": order.reference,
        "from_route_id": source.id if source else None,
        "to_route_id": dest.id,
        "from_driver_id": source.driver_id if source else None,
        "to_driver_id": dest.driver_id,
        "position": position,
        "manual": True,
    }
    if source is None:
        append_event(
            session,
            clock,
            merchant_id=plan.merchant_id,
            type="route.stop_added",
            actor=actor,
            order=order,
            route_id=dest.id,
            data=data,
        )
        return
    legs = [(source, "out"), (dest, "in")] if source.id != dest.id else [(dest, "resequenced")]
    for route, direction in legs:
        append_event(
            session,
            clock,
            merchant_id=plan.merchant_id,
            type="route.stop_moved",
            actor=actor,
            order=order,
            route_id=route.id,
            data={**data, "direction": direction},
        )


def take_off_plans(
    session: Session,
    clock: Clock,
    settings: Settings,
    merchant_id: str,
    order_id: str,
    *,
    actor: Actor,
    reason: str,
    provider: TravelTimeProvider | None = None,
) -> list[str]:
    """Take an order's not-yet-made stop off every draft or published plan it is on and list
    it as unassigned with ``reason`` (the recipient moved or redirected it), so the next
    (re-)plan places it; the routes it left are recomputed. On a published plan the driver
    gets ``route.stop_moved`` (direction ``out``) and recipients whose planned time moved get
    ``delivery.rescheduled``. A failed attempt's stop stays where it is (the recipient
    rebooks after it). 409 if the stop is made or under way. The plans' ids."""
    plan_ids = session.scalars(
        select(Plan.id)
        .join(Route, Route.plan_id == Plan.id)
        .join(Stop, Stop.route_id == Route.id)
        .where(
            Plan.merchant_id == merchant_id,
            Plan.status.in_(("draft", "published")),
            Stop.order_id == order_id,
            Stop.status != "failed",
        )
    ).all()
    for plan_id in plan_ids:
        plan = load_plan(session, merchant_id, plan_id)
        # A failed attempt stays on its route as history; the rebooking is new.
        source = next((r for r in plan.routes for s in r.stops if _live_stop(s, order_id)), None)
        if source is None:
            continue
        index = next(i for i, s in enumerate(source.stops) if _live_stop(s, order_id))
        stop = source.stops[index]
        if stop.status != "planned":
            raise Conflict("the stop is made or under way; it can no longer change")
        order_rows = {
            o.id: o
            for o in session.scalars(
                select(Order).where(
                    Order.merchant_id == merchant_id,
                    Order.id.in_({s.order_id for s in source.stops}),
                )
            )
        }
        route_meta = {k: dict(v) for k, v in plan.stats.get("route_meta", {}).items()}
        _rebase(route_meta.setdefault(source.id, {}), _done(source))
        before = {s.order_id: s.planned_arrival for s in source.stops}
        source.stops.remove(stop)
        _shift_break(route_meta.setdefault(source.id, {}), index - _done(source), None)
        meta = route_meta.setdefault(source.id, {})
        meta["not_on_board"] = [o for o in meta.get("not_on_board", []) if o != order_id]
        for sequence, s in enumerate(source.stops, start=1):
            s.sequence = sequence
        order = order_rows[order_id]
        plan.unassigned = [
            *(u for u in plan.unassigned or [] if u["order_id"] != order_id),
            {
                "order_id": order_id,
                "reference": order.reference,
                "reason": reason,
                "detail": f"{order.reference}: {reason}",
            },
        ]
        plan.stats = {**plan.stats, "route_meta": route_meta}
        session.flush()
        day, shifts, inputs = _move_inputs(session, settings, plan, [source], order_rows)
        provider = provider or travel_provider(settings)
        retime(source, plan, day, shifts[source.shift_id], inputs, provider)
        manual = plan.stats.get("manual_moves", 0)
        _refresh_stats(session, merchant_id, plan)
        plan.stats = {**plan.stats, "manual_moves": manual}  # the recipient's, not a dispatcher's
        session.flush()
        if plan.status == "published":
            append_event(
                session,
                clock,
                merchant_id=merchant_id,
                type="route.stop_moved",
                actor=actor,
                order=order,
                route_id=source.id,
                data={
                    "plan_id": plan.id,
                    "order_id": order_id,
                    "reference": order.reference,
                    "from_route_id": source.id,
                    "to_route_id": None,
                    "from_driver_id": source.driver_id,
                    "to_driver_id": None,
                    "direction": "out",
                    "reason": reason,
                    "manual": False,
                },
            )
            announce_planned_times(session, clock, actor, plan, [source], order_rows, before)
        session.flush()
    return list(plan_ids)
