"""Recipient self-service: reschedule, redirect, hold while away, edit instructions.

Each verb takes the order already loaded (by the merchant's API through
:func:`order_for_merchant`, or by the tracking page through its token) and is allowed until
the cut-off: by default until the driver sets off with the parcel (``out_for_delivery``), or,
when the merchant sets ``self_service_cutoff_minutes``, until that long before the window.
After it the verb refuses with :class:`SelfServiceClosed` (409) and a message the recipient
can read. A change that moves the delivery takes its stop off the day's plans
(:func:`~doorstep.domain.dispatch.moves.take_off_plans`), so the next re-plan places it.

The tracking page calls :func:`recipient_change` with the order it found by its token and
:func:`self_service_state` to know which forms to show and which windows to offer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from doorstep.clock import Clock
from doorstep.db.engine import transaction
from doorstep.domain.accounts.models import Merchant
from doorstep.domain.dispatch.models import Plan, Route, Stop
from doorstep.domain.dispatch.moves import take_off_plans
from doorstep.domain.errors import Actor, Conflict, FieldError, NotFound, Unprocessable
from doorstep.domain.orders.events import append_event, change_status
from doorstep.domain.orders.models import Order
from doorstep.domain.orders.queries import get_order
from doorstep.domain.orders.status import Reason, Status
from doorstep.domain.slots.choices import choice_out
from doorstep.domain.slots.config import slot_settings
from doorstep.domain.slots.live import (
    one_change_at_a_time,
    parcel_routes,
    parcels_of,
    place_on_live_plan,
    rejoin_live_plan,
)
from doorstep.domain.slots.models import DeliveryChoice, PickupPoint
from doorstep.domain.slots.quotes import Checker, quote
from doorstep.domain.slots.reservations import book_for_order, release_for_order
from doorstep.domain.slots.schemas import (
    ChoiceOut,
    HoldIn,
    InstructionsIn,
    PointIn,
    QuoteIn,
    RedirectIn,
    RescheduleIn,
    WindowOut,
)
from doorstep.domain.slots.zones import access_pickup_point
from doorstep.routing.travel.base import LatLon, TravelTimeProvider
from doorstep.runtime import Runtime
from doorstep.settings import Settings

ORDER_RESCHEDULED = "order.rescheduled"
ORDER_REDIRECTED = "order.redirected"
ORDER_HELD = "order.held"
ORDER_INSTRUCTIONS_CHANGED = "order.instructions_changed"

# Until the driver sets off with the parcel, the recipient may change the delivery.
OPEN_STATUSES = frozenset(
    {
        Status.PENDING,
        Status.SCHEDULED,
        Status.PICKED_UP,
        Status.IN_TRANSIT,
        Status.ON_HOLD,
        Status.DELIVERY_FAILED,
    }
)
# A recipient's reschedule or hold sends these back to be planned again.
BACK_TO_PENDING = frozenset(
    {Status.SCHEDULED, Status.ON_HOLD, Status.DELIVERY_FAILED, Status.DELIVERY_DELAYED}
)


class SelfServiceClosed(Conflict):
    title = "Too late to change this delivery"
    type_slug = "self-service-closed"


def order_for_merchant(session: Session, merchant_id: str, order_id: str) -> Order:
    """The merchant's order, locked for the change (404 for another merchant's), after the
    merchant's self-service lock (:func:`.live.one_change_at_a_time`): taken in this order, a
    change that writes events of other orders on a route (their rows' key-share locks) never
    waits for one that holds its order and waits for the merchant."""
    one_change_at_a_time(session, merchant_id)
    return get_order(session, merchant_id, order_id, for_update=True)


def _merchant(session: Session, order: Order) -> Merchant:
    merchant = session.get(Merchant, order.merchant_id)
    assert merchant is not None
    return merchant


def closed_reason(session: Session, merchant: Merchant, order: Order, now: datetime) -> str | None:
    """Why the recipient can no longer change the order, or None while they can."""
    status = Status(order.status)
    if status not in OPEN_STATUSES:
        if status in (Status.OUT_FOR_DELIVERY, Status.DELIVERY_DELAYED):
            return "the driver is already on the way with your parcel"
        return f"the delivery is {status.value.replace('_', ' ')} and can no longer be changed"
    under_way = session.scalar(
        select(Stop.id)
        .join(Route, Route.id == Stop.route_id)
        .join(Plan, Plan.id == Route.plan_id)
        .where(
            Stop.merchant_id == order.merchant_id,
            Stop.order_id == order.id,
            Plan.status == "published",
            Stop.status.in_(("en_route", "arrived")),
        )
        .limit(1)
    )
    if under_way is not None:
        return "the driver is already on the way to you"
    minutes = slot_settings(merchant).self_service_cutoff_minutes
    if (
        minutes is not None
        and order.window_start is not None
        and now >= order.window_start - timedelta(minutes=minutes)
    ):
        return f"changes close {minutes} minutes before the delivery window"
    return None


def _ensure_open(session: Session, merchant: Merchant, order: Order, now: datetime) -> None:
    reason = closed_reason(session, merchant, order, now)
    if reason is not None:
        raise SelfServiceClosed(f"This delivery can no longer be changed: {reason}.")


def _choice(session: Session, order: Order, now: datetime) -> DeliveryChoice:
    choice = session.get(DeliveryChoice, order.id)
    if choice is None:
        choice = DeliveryChoice(
            order_id=order.id, merchant_id=order.merchant_id, redirect_detail={}, updated_at=now
        )
        session.add(choice)
    choice.updated_at = now
    return choice


def _back_to_pending(session: Session, clock: Clock, order: Order, actor: Actor) -> None:
    if Status(order.status) in BACK_TO_PENDING:
        change_status(
            session, clock, order, Status.PENDING, actor=actor, reason=Reason.CONSIGNEE_RESCHEDULED
        )


# --- verbs ----------------------------------------------------------------------------------


def reschedule(
    session: Session,
    clock: Clock,
    settings: Settings,
    order: Order,
    data: RescheduleIn,
    *,
    actor: Actor,
    by: str,
    provider: TravelTimeProvider | None = None,
) -> Order:
    """Move the delivery to another window the calendar offers for the order's address
    (Saturday or Sunday where the calendar has them). The window's place is taken, the old
    one's given back; ``window_sequence`` grows; the stop leaves the plans and, when the new
    day's plan is published, joins it where the quote found room (:mod:`.live`; a same-day
    rebooking after a failed attempt included); logs ``order.rescheduled`` (``by``: recipient
    or merchant)."""
    merchant = _merchant(session, order)
    now = clock.now()
    _ensure_open(session, merchant, order, now)
    if order.window_start == data.start:
        raise Unprocessable(
            "the delivery is already in that window",
            errors=[FieldError("start", "is the current window", "same_window")],
        )
    if order.lat is None or order.lon is None:
        raise Conflict(
            "the order's address has no place on the map yet, so no window can be checked"
        )
    previous = (order.window_start, order.window_end)
    one_change_at_a_time(session, order.merchant_id)
    release_for_order(session, now, order.merchant_id, order.id)
    take_off_plans(
        session,
        clock,
        settings,
        order.merchant_id,
        order.id,
        actor=actor,
        reason="rescheduled",
        provider=provider,
    )
    check = Checker.build(
        session,
        now,
        settings,
        merchant,
        LatLon(order.lat, order.lon),
        parcels_of(order),
        provider,
        routes_for=parcel_routes(session, order),
    )
    res, window = book_for_order(check, order.id, data.calendar_id, data.start)
    _back_to_pending(session, clock, order, actor)
    choice = session.get(DeliveryChoice, order.id)
    if choice is not None:
        choice.held_until = None
    order.window_start, order.window_end = res.window_start, res.window_end
    order.service_level = res.service_level
    order.window_sequence += 1
    order.version += 1
    order.updated_at = now
    append_event(
        session,
        clock,
        merchant_id=order.merchant_id,
        type=ORDER_RESCHEDULED,
        actor=actor,
        order=order,
        data={
            "window_start": res.window_start.isoformat(),
            "window_end": res.window_end.isoformat(),
            "by": by,
            "previous_window_start": previous[0].isoformat() if previous[0] else None,
            "previous_window_end": previous[1].isoformat() if previous[1] else None,
            "window_sequence": order.window_sequence,
            "reservation_id": res.id,
            "fee_cents": res.fee_cents,
        },
    )
    place_on_live_plan(
        session, clock, settings, check, order, window, actor=actor, provider=provider
    )
    session.flush()
    return order


def redirect(
    session: Session,
    clock: Clock,
    settings: Settings,
    order: Order,
    data: RedirectIn,
    *,
    actor: Actor,
    provider: TravelTimeProvider | None = None,
) -> Order:
    """Leave the parcel with a neighbour, at a safe place (with consent to a photo), or at a
    pickup point. A pickup point becomes the delivery address (the original is kept on the
    choice) and the stop leaves the plans, then rejoins a published one at the new address
    where a route can still keep its window (:mod:`.live`); logs ``order.redirected``."""
    merchant = _merchant(session, order)
    now = clock.now()
    _ensure_open(session, merchant, order, now)
    choice = _choice(session, order, now)
    detail: dict[str, Any]
    if data.kind == "neighbour":
        assert data.neighbour is not None
        detail = {"name": data.neighbour.name, "house_number": data.neighbour.house_number}
    elif data.kind == "safe_place":
        assert data.safe_place is not None
        detail = {"place": data.safe_place.place, "photo_consent": data.safe_place.photo_consent}
    else:
        assert data.pickup_point_id is not None
        point = _pickup_point(session, order.merchant_id, data.pickup_point_id)
        detail = {
            "pickup_point_id": point.id,
            "name": point.name,
            "point_kind": point.kind,
            "line1": point.address_line1,
            "city": point.city,
        }
    original = (choice.redirect_detail or {}).get("original_address") or {
        "line1": order.address_line1,
        "line2": order.address_line2,
        "city": order.city,
        "postal_code": order.postal_code,
        "country": order.country,
        "lat": order.lat,
        "lon": order.lon,
    }
    was_pickup = choice.redirect_kind == "pickup_point"
    if data.kind == "pickup_point":
        order.address_line1, order.address_line2 = point.address_line1, None
        order.city, order.postal_code, order.country = point.city, point.postal_code, point.country
        order.lat, order.lon = point.lat, point.lon
    elif was_pickup:  # back to the door
        order.address_line1, order.address_line2 = original["line1"], original["line2"]
        order.city, order.postal_code = original["city"], original["postal_code"]
        order.country, order.lat, order.lon = original["country"], original["lat"], original["lon"]
    left: list[str] = []
    if data.kind == "pickup_point" or was_pickup:
        one_change_at_a_time(session, order.merchant_id)
        left = take_off_plans(
            session,
            clock,
            settings,
            order.merchant_id,
            order.id,
            actor=actor,
            reason="redirected",
            provider=provider,
        )
    choice.redirect_kind = data.kind
    choice.redirect_detail = {**detail, "original_address": original}
    choice.pickup_point_id = data.pickup_point_id if data.kind == "pickup_point" else None
    order.version += 1
    order.updated_at = now
    append_event(
        session,
        clock,
        merchant_id=order.merchant_id,
        type=ORDER_REDIRECTED,
        actor=actor,
        order=order,
        data={"kind": data.kind, "detail": detail},
    )
    if left:
        rejoin_live_plan(
            session, clock, settings, merchant, order, left, actor=actor, provider=provider
        )
    session.flush()
    return order


def _pickup_point(session: Session, merchant_id: str, point_id: str) -> PickupPoint:
    try:
        point = access_pickup_point(session, merchant_id, point_id)
    except NotFound:
        point = None
    if point is None or not point.active:
        raise Unprocessable(
            "no such pickup point",
            errors=[FieldError("pickup_point_id", "no such active pickup point", "not_found")],
        )
    return point


def hold(
    session: Session,
    clock: Clock,
    settings: Settings,
    order: Order,
    data: HoldIn,
    *,
    actor: Actor,
    provider: TravelTimeProvider | None = None,
) -> Order:
    """Hold the delivery while the recipient is away, until ``until`` (a local date after
    today, at most ``max_hold_days`` ahead): the order goes ``on_hold``, leaves the plans and
    gives its window back; a reschedule (or the date passing) ends the hold. Logs
    ``order.held``."""
    merchant = _merchant(session, order)
    now = clock.now()
    _ensure_open(session, merchant, order, now)
    today = now.astimezone(ZoneInfo(merchant.timezone)).date()
    longest = slot_settings(merchant).max_hold_days
    if not today < data.until <= today + timedelta(days=longest):
        raise Unprocessable(
            "the hold's end is not valid",
            errors=[FieldError("until", f"must be after today and at most {longest} days ahead")],
        )
    one_change_at_a_time(session, order.merchant_id)
    take_off_plans(
        session,
        clock,
        settings,
        order.merchant_id,
        order.id,
        actor=actor,
        reason="held",
        provider=provider,
    )
    release_for_order(session, now, order.merchant_id, order.id)
    if Status(order.status) is not Status.ON_HOLD:
        change_status(
            session,
            clock,
            order,
            Status.ON_HOLD,
            actor=actor,
            reason=Reason.DELIVERY_EXCEPTION_HOLD,
        )
    _choice(session, order, now).held_until = data.until
    append_event(
        session,
        clock,
        merchant_id=order.merchant_id,
        type=ORDER_HELD,
        actor=actor,
        order=order,
        data={"until": data.until.isoformat()},
    )
    session.flush()
    return order


def change_instructions(
    session: Session, clock: Clock, order: Order, data: InstructionsIn, *, actor: Actor
) -> Order:
    """Replace the delivery instructions (None clears them); logs
    ``order.instructions_changed``. No change, no event."""
    merchant = _merchant(session, order)
    now = clock.now()
    _ensure_open(session, merchant, order, now)
    text = (data.instructions or "").strip() or None
    if text == order.instructions:
        return order
    order.instructions = text
    order.version += 1
    order.updated_at = now
    append_event(
        session,
        clock,
        merchant_id=order.merchant_id,
        type=ORDER_INSTRUCTIONS_CHANGED,
        actor=actor,
        order=order,
        data={"instructions": text},
    )
    session.flush()
    return order


def release_holds(session: Session, clock: Clock) -> int:
    """Orders held until a date that has come go back to ``pending`` to be planned; how many."""
    now = clock.now()
    count = 0
    rows = session.execute(
        select(Order, DeliveryChoice, Merchant)
        .join(DeliveryChoice, DeliveryChoice.order_id == Order.id)
        .join(Merchant, Merchant.id == Order.merchant_id)
        .where(Order.status == Status.ON_HOLD.value, DeliveryChoice.held_until.is_not(None))
    ).all()
    for order, choice, merchant in rows:
        assert choice.held_until is not None
        if now.astimezone(ZoneInfo(merchant.timezone)).date() >= choice.held_until:
            choice.held_until = None
            change_status(session, clock, order, Status.PENDING, actor=Actor.system())
            count += 1
    session.flush()
    return count


def run_release_holds(runtime: Runtime) -> int:
    """The worker's job: :func:`release_holds` in its own transaction."""
    with transaction(runtime.sessions) as session:
        return release_holds(session, runtime.clock)


# --- what the tracking page needs -----------------------------------------------------------


@dataclass(frozen=True)
class SelfServiceState:
    """Whether the recipient may change the order, why not, and what they may pick."""

    open: bool
    closed_reason: str | None
    windows: list[WindowOut]
    pickup_points: list[PickupPoint]
    choice: ChoiceOut


def self_service_state(
    session: Session,
    clock: Clock,
    settings: Settings,
    order: Order,
    *,
    days: int | None = None,
    provider: TravelTimeProvider | None = None,
) -> SelfServiceState:
    """For the tracking page: may the recipient change the order, and if so the windows they
    can move it to (the next ``days``, default the merchant's ``quote_days``, the current one
    left out) and the active pickup points."""
    merchant = _merchant(session, order)
    now = clock.now()
    reason = closed_reason(session, merchant, order, now)
    tz = ZoneInfo(merchant.timezone)
    windows: list[WindowOut] = []
    points: list[PickupPoint] = []
    if reason is None:
        today = now.astimezone(tz).date()
        span = days or slot_settings(merchant).quote_days
        offered = quote(
            session,
            now,
            settings,
            merchant,
            QuoteIn(
                address=PointIn(lat=order.lat, lon=order.lon),
                parcels=parcels_of(order),
                date_from=today,
                date_to=today + timedelta(days=span - 1),
            ),
            provider=provider,
            routes_for=parcel_routes(session, order),
        )
        windows = [w for w in offered.windows if w.start != order.window_start]
        points = list(
            session.scalars(
                select(PickupPoint)
                .where(PickupPoint.merchant_id == order.merchant_id, PickupPoint.active)
                .order_by(PickupPoint.name)
            )
        )
    return SelfServiceState(reason is None, reason, windows, points, choice_out(session, order, tz))


Change = RescheduleIn | RedirectIn | HoldIn | InstructionsIn


def recipient_change(
    session: Session,
    clock: Clock,
    settings: Settings,
    order: Order,
    change: Change,
    *,
    provider: TravelTimeProvider | None = None,
) -> Order:
    """What the tracking page calls with the order found by its token: one change, made by
    the recipient (actor ``recipient``), under the same cut-off as the API."""
    actor = Actor("recipient")
    if isinstance(change, RescheduleIn):
        return reschedule(
            session, clock, settings, order, change, actor=actor, by="recipient", provider=provider
        )
    if isinstance(change, RedirectIn):
        return redirect(session, clock, settings, order, change, actor=actor, provider=provider)
    if isinstance(change, HoldIn):
        return hold(session, clock, settings, order, change, actor=actor, provider=provider)
    return change_instructions(session, clock, order, change, actor=actor)
