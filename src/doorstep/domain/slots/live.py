"""A rebooking joins the day's live plan at once.

When a recipient (or the merchant's API) moves a delivery to a window of a day whose plan is
published — a same-day rebooking after a failed attempt, or any reschedule — or redirects it
to a pickup point (or back to the door) while it is on a published plan, the stop is put on
the route where the quote found the cheapest insertion that keeps the window, through the
dispatcher's move path (:func:`~doorstep.domain.dispatch.moves.move_stop`): only that route is
recomputed, its driver gets ``route.stop_added``, the order becomes ``scheduled`` with its
planned time, and the recipients whose planned time moved are told. The dispatcher's next
re-plan may still move it, as it may any stop.

A checkout order confirmed on a reservation for such a day joins it the same way
(:func:`join_on_checkout`): the quote offered that window because the live plan could keep it.

Only a route that can still load the parcel is tried (:func:`parcel_routes`): one that has not
left the depot; after a failed attempt of the same day, one that leaves after the van carrying
the parcel is back (a route holds one stop per order, so the failed attempt's own route cannot
take it twice; the next re-plan may give it back to that van).
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from doorstep.clock import Clock
from doorstep.domain.accounts.models import Merchant
from doorstep.domain.dispatch.models import Plan, Route, Shift, Stop
from doorstep.domain.dispatch.moves import move_stop
from doorstep.domain.errors import Actor
from doorstep.domain.orders.models import Order
from doorstep.domain.slots.calendars import CalendarWindow
from doorstep.domain.slots.feasibility import DayPlan
from doorstep.domain.slots.models import Reservation, SlotCalendar
from doorstep.domain.slots.quotes import Checker, RouteFilter
from doorstep.domain.slots.reservations import SlotUnavailable
from doorstep.domain.slots.schemas import ParcelIn
from doorstep.routing.travel.base import LatLon, TravelTimeProvider
from doorstep.settings import Settings


def one_change_at_a_time(session: Session, merchant_id: str) -> None:
    """Queue the merchant's self-service changes that edit live plans behind each other (a
    lock on the merchant's row until the commit): two rebookings into one route must not
    both re-sequence it from what they read before the other committed. Take it before the
    order's own lock (:func:`.selfservice.order_for_merchant` does): nothing else locks a
    merchant, and a change holding it may need key-share locks on other orders' rows (their
    events and stops), so a change waiting for it must not hold its order yet."""
    session.execute(select(Merchant.id).where(Merchant.id == merchant_id).with_for_update())


def parcel_routes(session: Session, order: Order) -> RouteFilter:
    """Which routes of a published plan may take ``order``'s stop (a draft: any)."""

    def allowed(plan: DayPlan) -> frozenset[str] | None:
        if plan.status != "published":
            return None
        routes = session.execute(
            select(Route.id, Route.status, Route.start_at, Route.end_at, Shift.return_to_depot)
            .join(Shift, Shift.id == Route.shift_id)
            .where(Route.merchant_id == order.merchant_id, Route.plan_id == plan.plan_id)
        ).all()
        carrying = set(
            session.scalars(
                select(Stop.route_id).where(
                    Stop.merchant_id == order.merchant_id,
                    Stop.order_id == order.id,
                    Stop.status == "failed",
                    Stop.route_id.in_([r.id for r in routes]),
                )
            )
        )
        back = None
        for r in routes:
            if r.id in carrying:
                if not r.return_to_depot or r.end_at is None:
                    return frozenset()  # the parcel does not come back to the depot today
                back = max(back, r.end_at) if back is not None else r.end_at
        return frozenset(
            r.id
            for r in routes
            if r.status == "planned"
            and r.id not in carrying
            and (back is None or (r.start_at is not None and r.start_at >= back))
        )

    return allowed


def place_on_live_plan(
    session: Session,
    clock: Clock,
    settings: Settings,
    check: Checker,
    order: Order,
    window: CalendarWindow,
    *,
    actor: Actor,
    provider: TravelTimeProvider | None = None,
) -> str | None:
    """Put the rescheduled order's stop on the published plan of ``window``'s day (``check``
    was built for the order's address with :func:`parcel_routes`), at the cheapest insertion
    that keeps the window. The route's id; None when the day has no published plan yet (the
    planner will place it). 409 when no route can take it."""
    live, route_id = _insert(
        session,
        clock,
        settings,
        check,
        order,
        (window.calendar.depot_id, window.day, window.start, window.end),
        actor=actor,
        provider=provider,
    )
    if live and route_id is None:
        raise SlotUnavailable(
            "no route of the day's plan can take the delivery in that window any more; "
            "choose another window"
        )
    return route_id


def rejoin_live_plan(
    session: Session,
    clock: Clock,
    settings: Settings,
    merchant: Merchant,
    order: Order,
    plan_ids: list[str],
    *,
    actor: Actor,
    provider: TravelTimeProvider | None = None,
) -> str | None:
    """Put back on its published plan (one of ``plan_ids``, the plans its stop just left) an
    order whose address changed (a pickup point, or back to the door), in its window. The
    route's id; None when it was on no published plan or no route can keep its window (it
    stays unassigned with its reason, for the dispatcher)."""
    if order.lat is None or order.lon is None or order.window_start is None:
        return None
    found = session.execute(
        select(Plan.depot_id, Plan.date).where(
            Plan.merchant_id == order.merchant_id,
            Plan.id.in_(plan_ids),
            Plan.status == "published",
        )
    ).first()
    if found is None:
        return None
    check = Checker.build(
        session,
        clock.now(),
        settings,
        merchant,
        LatLon(order.lat, order.lon),
        parcels_of(order),
        provider,
        routes_for=parcel_routes(session, order),
    )
    end = order.window_end or order.window_start
    where = (found.depot_id, found.date, order.window_start, end)
    _, route_id = _insert(
        session, clock, settings, check, order, where, actor=actor, provider=provider
    )
    return route_id


def join_on_checkout(
    session: Session,
    clock: Clock,
    settings: Settings,
    order: Order,
    reservation_id: str,
    *,
    actor: Actor,
    provider: TravelTimeProvider | None = None,
) -> str | None:
    """Put an order just confirmed on ``reservation_id`` on the published plan of its window's
    day and depot, at the cheapest insertion that keeps the window: a same-day checkout after
    the plan went out reaches a van without waiting for the dispatcher's re-plan. The route's
    id; None when the day has no published plan (the planner will place it) or no route can
    take it any more (it stays unassigned with its reason, for the dispatcher)."""
    found = session.execute(
        select(SlotCalendar.depot_id, Merchant)
        .join(Reservation, Reservation.calendar_id == SlotCalendar.id)
        .join(Merchant, Merchant.id == SlotCalendar.merchant_id)
        .where(Reservation.id == reservation_id, Reservation.merchant_id == order.merchant_id)
    ).first()
    if found is None or order.window_start is None:
        return None
    depot_id, merchant = found
    day = order.window_start.astimezone(ZoneInfo(merchant.timezone)).date()
    plan_ids = list(
        session.scalars(
            select(Plan.id).where(
                Plan.merchant_id == order.merchant_id,
                Plan.depot_id == depot_id,
                Plan.date == day,
                Plan.status == "published",
            )
        )
    )
    if not plan_ids:
        return None
    one_change_at_a_time(session, order.merchant_id)
    return rejoin_live_plan(
        session, clock, settings, merchant, order, plan_ids, actor=actor, provider=provider
    )


def _insert(
    session: Session,
    clock: Clock,
    settings: Settings,
    check: Checker,
    order: Order,
    where: tuple[str, date, datetime, datetime],
    *,
    actor: Actor,
    provider: TravelTimeProvider | None,
) -> tuple[bool, str | None]:
    """Whether ``where`` (depot, day, window start and end) has a published plan with routes,
    and the route the order's stop joined there (None when none can keep the window)."""
    plan, found = check.insertion(*where)
    if plan is None or plan.status != "published" or not plan.routes:
        return False, None
    if found is None:
        return True, None
    move_stop(
        session,
        clock,
        settings,
        order.merchant_id,
        plan.plan_id,
        order_id=order.id,
        to_route_id=found.route_id,
        position=found.after,
        actor=actor,
        provider=provider,
        join=True,
    )
    return True, found.route_id


def parcels_of(order: Order) -> list[ParcelIn]:
    """The order's parcels as a quote weighs them (its weight shared out evenly)."""
    count = max(1, order.parcel_count)
    return [ParcelIn(weight_kg=order.weight_kg / count) for _ in range(count)]
