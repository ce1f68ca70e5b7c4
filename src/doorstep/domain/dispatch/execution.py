"""Carrying out a published route: the driver's verbs.

``start_route`` (route ``active``; each of its orders ``out_for_delivery``, one event each, and
``route.started``), ``arrive`` (``stop.arrived``, ``Stop.actual_arrival``), ``complete_stop``
(proof of delivery; the order ``delivered``) and ``fail_stop`` (a failed attempt with its
reason; the order ``delivery_failed``, ``Order.attempts`` + 1). When the last stop of a route is
done, failed or skipped, the route is ``done`` (``route.completed``).

The driver app and the API call the same verbs. ``driver_id`` narrows them to one driver's
routes (the driver app's session); another driver's or merchant's stop is a 404. A stop that is
already done or failed is a 409: a phone that replays an action after a bad connection sends
the same ``Idempotency-Key`` and gets the first answer instead (web layer).

Times: an action queued offline happened before it reached us; the client may send when
(``occurred_at``), which is kept between the route's start and now.

ETAs: every verb refreshes the route's remaining ETAs (:func:`refresh_route_eta`) in its own
transaction, inside a savepoint, so the ``delivery.eta_updated`` of the next recipients commits
with the stop event and reaches their tracking pages at once (the live bus publishes after the
commit); the worker's 5-second job only covers positions. A failing estimate rolls back its
savepoint and is logged: it never loses the driver's action.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from doorstep.clock import Clock
from doorstep.domain.accounts.models import Merchant
from doorstep.domain.dispatch.models import Plan, Route, Shift, Stop
from doorstep.domain.dispatch.proof import CleanImage, clean_upload, store_image
from doorstep.domain.errors import Actor, Conflict, FieldError, NotFound, Unprocessable
from doorstep.domain.orders.events import append_event, change_status
from doorstep.domain.orders.models import Order
from doorstep.domain.orders.status import Reason, Status, can_transition
from doorstep.domain.tracking.eta import refresh_route_eta, travel_for_plan
from doorstep.settings import Settings

log = logging.getLogger(__name__)

OPEN_STOP = frozenset({"planned", "en_route", "arrived"})
CLOSED_STOP = frozenset({"done", "failed", "skipped"})

# Reasons a driver may give for a failed attempt, with the words the app shows.
FAILURE_REASONS: dict[Reason, str] = {
    Reason.CONSIGNEE_NOT_HOME: "Nobody home",
    Reason.CONSIGNEE_NOT_AVAILABLE: "Recipient not available",
    Reason.CONSIGNEE_ACCESS_RESTRICTED: "No access (gate, door code, building closed)",
    Reason.CONSIGNEE_BUSINESS_CLOSED: "Business closed",
    Reason.CONSIGNEE_REFUSED: "Recipient refused the parcel",
    Reason.CONSIGNEE_INCORRECT_ADDRESS: "Wrong address",
    Reason.CARRIER_ADDRESS_NOT_FOUND: "Address not found",
    Reason.CARRIER_DAMAGED_PARCEL: "Parcel damaged",
    Reason.CARRIER_NOT_ENOUGH_TIME: "Ran out of time",
    Reason.CARRIER_VEHICLE_ISSUE: "Vehicle problem",
    Reason.WEATHER_DELAY: "Weather",
    Reason.DELIVERY_EXCEPTION_UNDELIVERABLE: "Cannot be delivered",
    Reason.UNKNOWN: "Other (say why in the note)",
}


@dataclass(frozen=True)
class DriverConfig:
    """The merchant's proof-of-delivery rules (``Merchant.config``; defaults when unset):
    ``pod_photo_required`` and ``pod_signature_required`` (both false)."""

    photo_required: bool = False
    signature_required: bool = False


def driver_config(config: dict[str, Any] | None) -> DriverConfig:
    """The one accessor of the driver keys of ``Merchant.config``."""
    config = config or {}
    return DriverConfig(
        photo_required=bool(config.get("pod_photo_required", False)),
        signature_required=bool(config.get("pod_signature_required", False)),
    )


@dataclass(frozen=True)
class Position:
    lat: float | None = None
    lon: float | None = None


@dataclass(frozen=True)
class ProofIn:
    """What the driver hands in at the door. Images are raw uploads, checked here."""

    photo: bytes | None = None
    signature: bytes | None = None
    received_by: str | None = None
    pin: str | None = None
    at: Position = field(default_factory=Position)
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class FailureIn:
    reason: Reason | None  # required; None is refused with a 422 naming the field
    note: str | None = None
    photo: bytes | None = None
    at: Position = field(default_factory=Position)
    occurred_at: datetime | None = None


@dataclass
class StopResult:
    """A stop after a verb, with its route and order."""

    stop: Stop
    route: Route
    order: Order


# --- access ---------------------------------------------------------------------------------


def access_route(
    session: Session, merchant_id: str, route_id: str, *, driver_id: str | None = None
) -> Route:
    """One of the merchant's routes (and the driver's, when given), with its stops; else 404."""
    route = session.scalar(
        select(Route)
        .where(Route.id == route_id, Route.merchant_id == merchant_id)
        .options(selectinload(Route.stops))
        .with_for_update()
    )
    if route is None or (driver_id is not None and route.driver_id != driver_id):
        raise NotFound("no such route")
    return route


def access_stop(
    session: Session, merchant_id: str, stop_id: str, *, driver_id: str | None = None
) -> Stop:
    """One of the merchant's stops (on the driver's routes, when given); else 404. A stop of a
    route a re-plan handed over (``superseded``) answers for the same order's stop on the
    route that continues it, so a phone that still shows the old route keeps working."""
    stop = session.scalar(
        select(Stop).where(Stop.id == stop_id, Stop.merchant_id == merchant_id).with_for_update()
    )
    if stop is None:
        raise NotFound("no such stop")
    route = access_route(session, merchant_id, stop.route_id, driver_id=driver_id)
    if route.status == "superseded":
        successor = session.scalar(
            select(Stop)
            .join(Route, Route.id == Stop.route_id)
            .join(Plan, Plan.id == Route.plan_id)
            .where(
                Stop.merchant_id == merchant_id,
                Stop.order_id == stop.order_id,
                Route.shift_id == route.shift_id,
                Plan.status == "published",
            )
            .with_for_update(of=Stop)
        )
        if successor is not None:
            return successor
    return stop


def _published(session: Session, route: Route) -> None:
    status = session.scalar(select(Plan.status).where(Plan.id == route.plan_id))
    if status != "published":
        raise Conflict(f"the route's plan is {status}; only a published route is driven")


def _order(session: Session, stop: Stop) -> Order:
    order = session.scalar(
        select(Order)
        .where(Order.id == stop.order_id, Order.merchant_id == stop.merchant_id)
        .with_for_update()
    )
    if order is None:  # pragma: no cover - the foreign key guarantees it
        raise NotFound("no such order")
    return order


def _when(clock: Clock, route: Route, occurred_at: datetime | None) -> datetime:
    """When an action happened: the client's time, kept between the route's start and now."""
    now = clock.now()
    if occurred_at is None or occurred_at.tzinfo is None:
        return now
    earliest = route.started_at or now
    return max(earliest, min(occurred_at, now))


def _open_stop(route: Route, stop: Stop) -> None:
    if route.status != "active":
        what = {
            "planned": "start the route first",
            "superseded": "a re-plan moved this stop to another route",
        }.get(route.status, "the route is over")
        raise Conflict(f"the route is {route.status}; {what}")
    if stop.status in CLOSED_STOP:
        raise Conflict(f"the stop is already {stop.status}")


# --- verbs ----------------------------------------------------------------------------------


def start_route(
    session: Session,
    clock: Clock,
    merchant_id: str,
    route_id: str,
    *,
    actor: Actor,
    driver_id: str | None = None,
    occurred_at: datetime | None = None,
    settings: Settings | None = None,
) -> Route:
    """Start a published route: each order still to deliver goes ``out_for_delivery`` (one
    event each); a stop whose order can no longer go out (cancelled, on hold) is ``skipped``."""
    route = access_route(session, merchant_id, route_id, driver_id=driver_id)
    _published(session, route)
    if route.status != "planned":
        raise Conflict(f"the route is already {route.status}")
    now = clock.now()
    when = min(occurred_at, now) if occurred_at and occurred_at.tzinfo else now
    route.status = "active"
    route.started_at = when
    out, skipped = send_out(session, clock, route, actor=actor, when=when)
    shift = session.get(Shift, route.shift_id)
    if shift is not None and shift.status == "planned":
        shift.status = "active"
    route.version += 1
    append_event(
        session,
        clock,
        merchant_id=merchant_id,
        type="route.started",
        actor=actor,
        route_id=route.id,
        data={
            "plan_id": route.plan_id,
            "driver_id": route.driver_id,
            "shift_id": route.shift_id,
            "stops": out,
            "skipped": skipped,
        },
        occurred_at=when,
    )
    complete_if_finished(session, clock, route, actor=actor, at=when)
    session.flush()
    refresh_etas(session, clock, settings, route, "route started")
    return route


def send_out(
    session: Session,
    clock: Clock,
    route: Route,
    *,
    actor: Actor,
    when: datetime,
    on_board: frozenset[Status] = frozenset({Status.OUT_FOR_DELIVERY}),
) -> tuple[int, int]:
    """Each open stop's order goes ``out_for_delivery`` (one event each; an order already
    ``on_board`` counts as out without an event); a stop whose order can no longer go out
    (cancelled, on hold) is ``skipped``. Returns (out, skipped). Used when a route starts and
    when a re-plan gives a live route new stops (:func:`~.publishing.publish_plan`, where a
    delayed order is on board too)."""
    out = skipped = 0
    orders = {
        o.id: o
        for o in session.scalars(
            select(Order)
            .where(
                Order.merchant_id == route.merchant_id,
                Order.id.in_([s.order_id for s in route.stops]),
            )
            .with_for_update()
        )
    }
    for stop in route.stops:
        if stop.status not in OPEN_STOP:
            continue
        order = orders[stop.order_id]
        status = Status(order.status)
        if status in on_board:
            out += 1
        elif can_transition(status, Status.OUT_FOR_DELIVERY):
            event = change_status(
                session,
                clock,
                order,
                Status.OUT_FOR_DELIVERY,
                actor=actor,
                data={"route_id": route.id, "stop_id": stop.id, "driver_id": route.driver_id},
                occurred_at=when,
            )
            event.route_id = route.id
            out += 1
        else:
            stop.status = "skipped"
            skipped += 1
    return out, skipped


def arrive(
    session: Session,
    clock: Clock,
    merchant_id: str,
    stop_id: str,
    *,
    actor: Actor,
    driver_id: str | None = None,
    at: Position | None = None,
    occurred_at: datetime | None = None,
    settings: Settings | None = None,
) -> StopResult:
    """The driver is at the door: ``stop.arrived`` and the stop's actual arrival."""
    stop = access_stop(session, merchant_id, stop_id, driver_id=driver_id)
    route = access_route(session, merchant_id, stop.route_id)
    _open_stop(route, stop)
    if stop.status == "arrived":
        raise Conflict("the driver has already arrived at this stop")
    order = _order(session, stop)
    when = _when(clock, route, occurred_at)
    stop.status = "arrived"
    stop.actual_arrival = when
    at = at or Position()
    append_event(
        session,
        clock,
        merchant_id=merchant_id,
        type="stop.arrived",
        actor=actor,
        order=order,
        route_id=route.id,
        data={"stop_id": stop.id, "lat": at.lat, "lon": at.lon},
        occurred_at=when,
    )
    session.flush()
    refresh_etas(session, clock, settings, route, "driver arrived at a stop")
    return StopResult(stop, route, order)


def _check_pin(order: Order, pin: str | None) -> bool:
    """Whether a PIN was checked; a missing or wrong one for a PIN order is a 422."""
    if not order.requires_pin:
        return False
    typed = (pin or "").strip()
    if not typed:
        raise Unprocessable(
            "this delivery needs the recipient's PIN",
            errors=[FieldError("pin", "the recipient's PIN is required", "pin_required")],
        )
    if not order.delivery_pin or not hmac.compare_digest(
        typed.encode(), order.delivery_pin.encode()
    ):
        raise Unprocessable(
            "the PIN is not the recipient's",
            errors=[FieldError("pin", "wrong PIN", "pin_mismatch")],
        )
    return True


def complete_stop(
    session: Session,
    clock: Clock,
    settings: Settings,
    merchant_id: str,
    stop_id: str,
    proof: ProofIn,
    *,
    actor: Actor,
    driver_id: str | None = None,
) -> StopResult:
    """Deliver a stop with its proof: the order ``delivered`` (``data.proof``), the stop
    ``done``; the route ``done`` after its last stop."""
    stop = access_stop(session, merchant_id, stop_id, driver_id=driver_id)
    route = access_route(session, merchant_id, stop.route_id)
    _open_stop(route, stop)
    order = _order(session, stop)
    if not can_transition(Status(order.status), Status.DELIVERED):
        raise Conflict(f"an order that is {order.status} cannot be delivered")
    photo = clean_upload(settings, proof.photo, field="photo")
    signature = clean_upload(settings, proof.signature, field="signature", signature=True)
    received_by = _text(proof.received_by, 200)
    pin_verified = _check_pin(order, proof.pin)
    rules = driver_config(_merchant_config(session, merchant_id))
    missing = []
    if rules.photo_required and photo is None:
        missing.append(FieldError("photo", "a photo is required", "required"))
    if rules.signature_required and signature is None:
        missing.append(FieldError("signature", "a signature is required", "required"))
    if missing:
        raise Unprocessable("the proof of delivery is incomplete", errors=missing)
    when = _when(clock, route, proof.occurred_at)
    _keep(session, clock, stop, order, photo, "pod")
    _keep(session, clock, stop, order, signature, "signature")
    if stop.actual_arrival is None:
        stop.actual_arrival = when
    stop.actual_departure = max(when, stop.actual_arrival)
    stop.status = "done"
    event = change_status(
        session,
        clock,
        order,
        Status.DELIVERED,
        actor=actor,
        data={
            "stop_id": stop.id,
            "route_id": route.id,
            "proof": {
                "photo": photo is not None,
                "signature": signature is not None,
                "received_by": received_by,
                "pin_verified": pin_verified,
                "lat": proof.at.lat,
                "lon": proof.at.lon,
            },
        },
        occurred_at=when,
    )
    event.route_id = route.id
    complete_if_finished(session, clock, route, actor=actor, at=when)
    session.flush()
    refresh_etas(session, clock, settings, route, "previous stop delivered")
    return StopResult(stop, route, order)


def fail_stop(
    session: Session,
    clock: Clock,
    settings: Settings,
    merchant_id: str,
    stop_id: str,
    failure: FailureIn,
    *,
    actor: Actor,
    driver_id: str | None = None,
) -> StopResult:
    """Record a failed attempt: the order ``delivery_failed`` with its reason, one more
    attempt; the stop ``failed``; the route ``done`` after its last stop."""
    stop = access_stop(session, merchant_id, stop_id, driver_id=driver_id)
    if failure.reason is None:
        raise Unprocessable(
            "say why the delivery failed",
            errors=[FieldError("reason", "a reason is required", "required")],
        )
    if failure.reason not in FAILURE_REASONS:
        raise Unprocessable(
            f"{failure.reason.value} is not a reason for a failed attempt",
            errors=[FieldError("reason", "not a failed-attempt reason", "invalid_reason")],
        )
    route = access_route(session, merchant_id, stop.route_id)
    _open_stop(route, stop)
    order = _order(session, stop)
    if not can_transition(Status(order.status), Status.DELIVERY_FAILED):
        raise Conflict(f"an order that is {order.status} cannot fail an attempt")
    photo = clean_upload(settings, failure.photo, field="photo")
    when = _when(clock, route, failure.occurred_at)
    _keep(session, clock, stop, order, photo, "attempt")
    if stop.actual_arrival is None:
        stop.actual_arrival = when
    stop.actual_departure = max(when, stop.actual_arrival)
    stop.status = "failed"
    order.attempts += 1
    note = _text(failure.note, 1000)
    event = change_status(
        session,
        clock,
        order,
        Status.DELIVERY_FAILED,
        actor=actor,
        reason=failure.reason,
        data={
            "stop_id": stop.id,
            "route_id": route.id,
            "attempt": order.attempts,
            "note": note,
            "photo": photo is not None,
            "lat": failure.at.lat,
            "lon": failure.at.lon,
        },
        occurred_at=when,
    )
    event.route_id = route.id
    complete_if_finished(session, clock, route, actor=actor, at=when)
    session.flush()
    refresh_etas(session, clock, settings, route, "previous stop not delivered")
    return StopResult(stop, route, order)


# --- internals ------------------------------------------------------------------------------


def refresh_etas(
    session: Session, clock: Clock, settings: Settings | None, route: Route, reason: str
) -> None:
    """Recompute the remaining stops' ETAs of an active route now, in this transaction (a
    savepoint: an estimate that fails is logged and undone, the driver's action stays)."""
    if route.status != "active":
        return
    settings = settings or Settings()
    plan_provider = session.scalar(select(Plan.travel_provider).where(Plan.id == route.plan_id))
    travel = travel_for_plan(settings, plan_provider or "")
    try:
        with session.begin_nested():
            refresh_route_eta(
                session, clock, route.id, travel=travel, reason=reason, settings=settings
            )
    except Exception:  # the delivery matters more than its neighbours' estimate
        log.exception("ETA refresh after a stop event failed for route %s", route.id)


def _text(value: str | None, limit: int) -> str | None:
    """Free text from a form: trimmed, without NUL characters, at most ``limit`` long."""
    return (value or "").replace("\x00", "").strip()[:limit] or None


def _merchant_config(session: Session, merchant_id: str) -> dict[str, Any]:
    merchant = session.get(Merchant, merchant_id)
    return dict(merchant.config or {}) if merchant is not None else {}


def _keep(
    session: Session,
    clock: Clock,
    stop: Stop,
    order: Order,
    image: CleanImage | None,
    kind: Any,
) -> None:
    if image is not None:
        store_image(
            session,
            clock,
            merchant_id=order.merchant_id,
            order_id=order.id,
            stop_id=stop.id,
            kind=kind,
            image=image,
        )


def complete_if_finished(
    session: Session, clock: Clock, route: Route, *, actor: Actor, at: datetime
) -> None:
    """``route.completed`` once every stop is done, failed or skipped."""
    if route.status != "active" or any(s.status not in CLOSED_STOP for s in route.stops):
        return
    route.status = "done"
    route.completed_at = at
    counts = {k: sum(1 for s in route.stops if s.status == k) for k in sorted(CLOSED_STOP)}
    append_event(
        session,
        clock,
        merchant_id=route.merchant_id,
        type="route.completed",
        actor=actor,
        route_id=route.id,
        data={"driver_id": route.driver_id, **counts},
        occurred_at=at,
    )
    shift = session.get(Shift, route.shift_id)
    if shift is not None and shift.status == "active":
        shift.status = "ended"
