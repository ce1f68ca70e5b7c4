"""Publishing a plan: its routes become the drivers' own and its orders get scheduled.

Publishing writes the event log: ``delivery.scheduled`` (through ``change_status``) for orders
that were not scheduled yet, ``delivery.rescheduled`` for scheduled ones whose planned time
moved, ``order.pending`` for scheduled orders the new plan leaves out, one ``route.published``
per route and, when it replaces a published plan, ``route.stop_moved`` / ``route.stop_added`` /
``route.stop_removed`` for every driver whose stops changed.

A re-plan of a day under way hands each started route over to its successor on the same
shift (:func:`hand_over_live_routes`): the successor keeps the route ``active`` (no second
``route.started``), its start time and the stops' ETA state; its new stops go out for
delivery; the old route becomes ``superseded`` and its stops answer for the successor's
(:func:`~.execution.access_stop`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from doorstep.clock import Clock
from doorstep.domain.dispatch.execution import OPEN_STOP, complete_if_finished, send_out
from doorstep.domain.dispatch.models import Depot, Driver, Plan, Route, Shift, Stop
from doorstep.domain.dispatch.resources import access_driver, merchant_tz
from doorstep.domain.dispatch.views import PlanView, load_plan, load_plan_view, views_of
from doorstep.domain.errors import Actor, Conflict
from doorstep.domain.orders.events import append_event, change_status
from doorstep.domain.orders.models import Order
from doorstep.domain.orders.status import PLANNABLE, Status

# A scheduled order's recipient hears about a new planned time only if it moved this much.
RESCHEDULE_THRESHOLD = timedelta(minutes=5)
# Orders already with the driver: they stay on routes without a status change.
ON_BOARD = frozenset({Status.PICKED_UP, Status.IN_TRANSIT, Status.OUT_FOR_DELIVERY})
# What a live route's successor takes over from each of its stops (same order).
_STOP_STATE = (
    "eta",
    "eta_earliest",
    "eta_latest",
    "eta_confidence",
    "eta_computed_at",
    "eta_published",
    "eta_published_earliest",
    "eta_published_latest",
    "actual_arrival",
)


@dataclass(frozen=True)
class Assignment:
    """Where an order is in a plan."""

    shift_id: str
    route_id: str
    driver_id: str


def assignments(plan: Plan) -> dict[str, Assignment]:
    """Order id -> the shift (route, driver) it is on in ``plan``."""
    return {
        stop.order_id: Assignment(route.shift_id, route.id, route.driver_id)
        for route in plan.routes
        for stop in route.stops
    }


def diff_plans(old: Plan, new: Plan, references: dict[str, str]) -> dict[str, Any]:
    """What changed for drivers between two plans of a day: stops that moved to another shift,
    were added, or were removed. Shifts, not routes, are compared (each plan has its own
    routes)."""
    before, after = assignments(old), assignments(new)

    def ref(order_id: str) -> str:
        return references.get(order_id, order_id)

    moved = [
        {
            "order_id": o,
            "reference": ref(o),
            "from_shift_id": before[o].shift_id,
            "to_shift_id": after[o].shift_id,
            "from_driver_id": before[o].driver_id,
            "to_driver_id": after[o].driver_id,
        }
        for o in before.keys() & after.keys()
        if before[o].shift_id != after[o].shift_id
    ]
    added = [
        {
            "order_id": o,
            "reference": ref(o),
            "shift_id": after[o].shift_id,
            "driver_id": after[o].driver_id,
        }
        for o in after.keys() - before.keys()
    ]
    removed = [
        {
            "order_id": o,
            "reference": ref(o),
            "shift_id": before[o].shift_id,
            "driver_id": before[o].driver_id,
        }
        for o in before.keys() - after.keys()
    ]

    def by_ref(items: list[dict[str, str]]) -> list[dict[str, str]]:
        return sorted(items, key=lambda i: (i["reference"], i["order_id"]))

    return {
        "moved_count": len(moved),
        "moved": by_ref(moved),
        "added": by_ref(added),
        "removed": by_ref(removed),
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def announce_planned_times(
    session: Session,
    clock: Clock,
    actor: Actor,
    plan: Plan,
    routes: list[Route],
    orders: dict[str, Order],
    before: dict[str, datetime | None],
) -> None:
    """Schedule the routes' not-yet-started orders, or tell scheduled ones their new planned
    time when it moved by at least :data:`RESCHEDULE_THRESHOLD` (``before``: order id -> the
    planned time they were last told; missing means never told)."""
    for route in routes:
        for stop in route.stops:
            if stop.status != "planned":
                continue
            order = orders[stop.order_id]
            data = {
                "plan_id": plan.id,
                "route_id": route.id,
                "shift_id": route.shift_id,
                "driver_id": route.driver_id,
                "sequence": stop.sequence,
                "planned_arrival": _iso(stop.planned_arrival),
            }
            status = Status(order.status)
            if status is Status.SCHEDULED:
                previous = before.get(order.id)
                moved = (
                    previous is None
                    or stop.planned_arrival is None
                    or abs(stop.planned_arrival - previous) >= RESCHEDULE_THRESHOLD
                )
                if moved:
                    append_event(
                        session,
                        clock,
                        merchant_id=plan.merchant_id,
                        type="delivery.rescheduled",
                        actor=actor,
                        order=order,
                        route_id=route.id,
                        data={**data, "previous_planned_arrival": _iso(previous)},
                    )
            elif status in PLANNABLE:
                change_status(session, clock, order, Status.SCHEDULED, actor=actor, data=data)


def _check_orders(plan: Plan, orders: dict[str, Order]) -> None:
    """Refuse to publish stops whose order can no longer be delivered (cancelled, on hold...)
    since the plan was made: the dispatcher re-plans instead."""
    stale = sorted(
        orders[stop.order_id].reference
        for route in plan.routes
        for stop in route.stops
        if stop.status == "planned"
        and Status(orders[stop.order_id].status) not in PLANNABLE | ON_BOARD
    )
    if stale:
        raise Conflict(
            f"orders changed since this plan was made ({', '.join(stale[:20])}); re-plan first"
        )


def _route_events(
    session: Session,
    clock: Clock,
    actor: Actor,
    plan: Plan,
    previous: Plan,
    changes: dict[str, Any],
    orders: dict[str, Order],
) -> None:
    """``route.stop_*`` events on the routes of every driver whose stops changed."""
    new_route = {r.shift_id: r.id for r in plan.routes}
    old_route = {r.shift_id: r.id for r in previous.routes}

    def emit(kind: str, shift_id: str, order_id: str, data: dict[str, Any]) -> None:
        append_event(
            session,
            clock,
            merchant_id=plan.merchant_id,
            type=f"route.stop_{kind}",
            actor=actor,
            order=orders.get(order_id),
            route_id=new_route.get(shift_id) or old_route[shift_id],
            data={"plan_id": plan.id, "previous_plan_id": previous.id, **data},
        )

    for move in changes["moved"]:
        emit("moved", move["from_shift_id"], move["order_id"], {**move, "direction": "out"})
        emit("moved", move["to_shift_id"], move["order_id"], {**move, "direction": "in"})
    for item in changes["added"]:
        emit("added", item["shift_id"], item["order_id"], item)
    for item in changes["removed"]:
        emit("removed", item["shift_id"], item["order_id"], item)


def published_plan(session: Session, merchant_id: str, depot_id: str, day: date) -> Plan | None:
    """The published plan of a depot's day, if any."""
    return session.scalar(
        select(Plan)
        .where(
            Plan.merchant_id == merchant_id,
            Plan.depot_id == depot_id,
            Plan.date == day,
            Plan.status == "published",
        )
        .options(selectinload(Plan.routes).selectinload(Route.stops))
    )


class UnconfirmedViolations(Conflict):
    """The plan breaks rules on its routes and the caller did not confirm that many."""

    title = "Plan has violations"
    type_slug = "violations-unconfirmed"


def violation_count(plan: Plan) -> int:
    """How many problems (late stops, overloads, missing skills...) the plan's routes have."""
    return sum(len(route.violations or []) for route in plan.routes)


def check_confirmation(plan: Plan, confirm_violations: int | None) -> None:
    """Refuse a plan with violations unless ``confirm_violations`` says exactly how many the
    caller saw and accepts. ``None`` is the API's default (no check, as before); a number that
    no longer matches (the plan changed meanwhile) must be confirmed again."""
    if confirm_violations is None:
        return
    count = violation_count(plan)
    if count and confirm_violations != count:
        noun = "problem" if count == 1 else "problems"
        raise UnconfirmedViolations(
            f"the plan has {count} {noun} on its routes; confirm that you publish it with "
            f"{'this' if count == 1 else 'these'} {count} {noun}",
            extensions={"violations": count, "confirmed": confirm_violations},
        )


def publish_plan(
    session: Session,
    clock: Clock,
    merchant_id: str,
    plan_id: str,
    *,
    actor: Actor,
    confirm_violations: int | None = None,
) -> PlanView:
    """Make a draft the depot's plan for its day; the previous one becomes ``superseded``.
    With ``confirm_violations`` (the console always sends it), a plan whose routes break rules
    is published only if that is their number (:func:`check_confirmation`)."""
    plan = load_plan(session, merchant_id, plan_id)
    if plan.status != "draft":
        raise Conflict(f"the plan is {plan.status}; only a draft can be published")
    # The depot row is the lock that keeps one published plan per depot and day (PostgreSQL;
    # SQLite writers are serialised anyway).
    session.scalar(select(Depot.id).where(Depot.id == plan.depot_id).with_for_update())
    session.refresh(plan)
    if plan.status != "draft":
        raise Conflict(f"the plan is {plan.status}; only a draft can be published")
    check_confirmation(plan, confirm_violations)
    previous = published_plan(session, merchant_id, plan.depot_id, plan.date)
    if plan.parent_plan_id is not None and (previous is None or previous.id != plan.parent_plan_id):
        raise Conflict("the plan this re-plan started from is no longer published; re-plan again")
    order_ids = set(assignments(plan)) | (set(assignments(previous)) if previous else set())
    orders = {
        o.id: o
        for o in session.scalars(
            select(Order)
            .where(Order.merchant_id == merchant_id, Order.id.in_(order_ids))
            .with_for_update()
        )
    }
    _check_orders(plan, orders)
    told: dict[str, datetime | None] = {}
    if previous is not None:
        told = {s.order_id: s.planned_arrival for r in previous.routes for s in r.stops}
    announce_planned_times(session, clock, actor, plan, list(plan.routes), orders, told)

    now = clock.now()
    stats = dict(plan.stats or {})
    if previous is not None:
        still = set(assignments(plan))
        for order_id in sorted(set(assignments(previous)) - still):
            order = orders[order_id]
            if order.status == Status.SCHEDULED:
                change_status(
                    session,
                    clock,
                    order,
                    Status.PENDING,
                    actor=actor,
                    data={"plan_id": plan.id, "detail": "not on the new plan"},
                )
        changes = diff_plans(previous, plan, {o.id: o.reference for o in orders.values()})
        _route_events(session, clock, actor, plan, previous, changes, orders)
        stats["changes"] = changes
        previous.status = "superseded"
        session.flush()  # one published plan per depot and day, even mid-transaction
        continues = hand_over_live_routes(session, clock, actor, previous, plan)
    else:
        continues = {}
    for route in plan.routes:
        append_event(
            session,
            clock,
            merchant_id=merchant_id,
            type="route.published",
            actor=actor,
            route_id=route.id,
            data={
                "plan_id": plan.id,
                "shift_id": route.shift_id,
                "driver_id": route.driver_id,
                "vehicle_id": route.vehicle_id,
                "stops": len(route.stops),
                "start_at": _iso(route.start_at),
                "end_at": _iso(route.end_at),
                "status": route.status,
                "continues_route_id": continues.get(route.id),
            },
        )
    dropped = stats.get("dropped_shift_ids") or []
    for shift in session.scalars(
        select(Shift).where(Shift.merchant_id == merchant_id, Shift.id.in_(dropped))
    ):
        shift.status = "dropped"
    plan.stats = stats
    plan.status = "published"
    plan.published_at = now
    session.flush()
    return load_plan_view(session, merchant_id, plan.id)


def hand_over_live_routes(
    session: Session, clock: Clock, actor: Actor, previous: Plan, plan: Plan
) -> dict[str, str]:
    """The routes of ``previous`` the drivers have started live on in ``plan``'s routes of the
    same shifts; returns successor route id -> the route it continues.

    A started (``active``) route's successor is ``active`` from the same ``started_at``: the
    driver is on the road, so there is no second ``route.started``. Its stops take over the
    ETA state and arrival of the same order's stop (so the next ETA refresh publishes only real
    moves), and its new stops (an order added or moved to it) go out for delivery now. A
    finished (``done``) route's successor with nothing left to do is ``done`` too; one given new
    stops stays ``planned``: the driver loads them at the depot and starts again. The old route
    becomes ``superseded``: positions and ETA refreshes go to its successor only.
    """
    now = clock.now()
    old_by_shift = {r.shift_id: r for r in previous.routes}
    continues: dict[str, str] = {}
    for route in plan.routes:
        old = old_by_shift.get(route.shift_id)
        if old is None or old.status not in ("active", "done"):
            continue
        open_stops = [s for s in route.stops if s.status in OPEN_STOP]
        if old.status == "done" and open_stops:
            continue
        old_stops: dict[str, Stop] = {s.order_id: s for s in old.stops}
        for stop in open_stops:
            before = old_stops.get(stop.order_id)
            if before is not None and before.status in OPEN_STOP:
                for name in _STOP_STATE:
                    setattr(stop, name, getattr(before, name))
        route.status = old.status
        route.started_at = old.started_at
        route.completed_at = old.completed_at
        route.version = old.version + 1
        old.status = "superseded"
        continues[route.id] = old.id
        if route.status == "active":
            on_board = ON_BOARD | {Status.DELIVERY_DELAYED}
            send_out(session, clock, route, actor=actor, when=now, on_board=on_board)
            complete_if_finished(session, clock, route, actor=actor, at=now)
    return continues


@dataclass
class DriverDay:
    """A driver's published routes of one day, each with the plan it belongs to."""

    driver: Driver
    day: date
    routes: list[tuple[Route, PlanView]]


def driver_routes(
    session: Session, clock: Clock, merchant_id: str, driver_id: str, day: date | None
) -> DriverDay:
    """A driver's published routes of a day (today in the merchant's timezone by default),
    earliest first."""
    driver = access_driver(session, merchant_id, driver_id)
    day = day or clock.now().astimezone(merchant_tz(session, merchant_id)).date()
    plans = list(
        session.scalars(
            select(Plan)
            .where(
                Plan.merchant_id == merchant_id,
                Plan.date == day,
                Plan.status == "published",
                Plan.id.in_(select(Route.plan_id).where(Route.driver_id == driver.id)),
            )
            .options(selectinload(Plan.routes).selectinload(Route.stops))
        )
    )
    routes = [
        (route, view)
        for view in views_of(session, merchant_id, plans)
        for route in view.plan.routes
        if route.driver_id == driver.id
    ]
    routes.sort(key=lambda rv: (rv[0].start_at is None, rv[0].start_at, rv[0].id))
    return DriverDay(driver, day, routes)
