"""Publish what a transaction wrote, once it has committed.

:func:`install_publisher` hooks a session factory: after each flush the new
:class:`DeliveryEvent` and :class:`Position` rows are turned into small messages kept on the
session; after the commit they are published; a rollback throws them away. So a subscriber
never hears of something that did not happen, and the database is the truth it can re-read.

Channels: an event goes to ``order:{order_id}``, ``route:{route_id}`` (the event's route, else
the route of the order's stop in its published plan) and ``merchant:{merchant_id}``; a position
to ``route:{route_id}`` and ``merchant:{merchant_id}``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from doorstep.domain.dispatch.models import Plan, Route, Stop
from doorstep.domain.orders.models import DeliveryEvent
from doorstep.domain.tracking.models import Position
from doorstep.domain.tracking.writer import PendingPosition, StoredPosition
from doorstep.live.bus import ERRORS, LiveBus

log = logging.getLogger(__name__)

PENDING_KEY = "doorstep_live_pending"

# Event data that may travel on the bus: small values the pages need, no personal data.
DATA_KEYS = frozenset(
    {"eta", "earliest", "latest", "confidence", "stops_before", "minutes_away", "stop_id", "to"}
)


def event_message(ev: DeliveryEvent, route_id: str | None) -> dict[str, Any]:
    return {
        "kind": "event",
        "seq": ev.seq,
        "id": ev.id,
        "type": ev.type,
        "merchant_id": ev.merchant_id,
        "order_id": ev.order_id,
        "route_id": route_id,
        "status": ev.status,
        "reason": ev.reason,
        "occurred_at": ev.occurred_at.isoformat(),
        "data": {k: v for k, v in (ev.data or {}).items() if k in DATA_KEYS},
    }


def position_message(pos: Position) -> dict[str, Any]:
    return {
        "kind": "position",
        "id": pos.id,
        "merchant_id": pos.merchant_id,
        "driver_id": pos.driver_id,
        "route_id": pos.route_id,
        "lat": pos.lat,
        "lon": pos.lon,
        "heading": pos.heading_deg,
        "speed": pos.speed_mps,
        "recorded_at": pos.recorded_at.isoformat(),
    }


def channels_for(message: dict[str, Any]) -> list[str]:
    out = [f"merchant:{message['merchant_id']}"]
    if message.get("order_id"):
        out.append(f"order:{message['order_id']}")
    if message.get("route_id"):
        out.append(f"route:{message['route_id']}")
    return out


def _pending_message(p: PendingPosition, row_id: int | None) -> dict[str, Any]:
    return {
        "kind": "position",
        "id": row_id,
        "merchant_id": p.merchant_id,
        "driver_id": p.driver_id,
        "route_id": p.route_id,
        "lat": p.fix.lat,
        "lon": p.fix.lon,
        "heading": p.fix.heading_deg,
        "speed": p.fix.speed_mps,
        "recorded_at": p.fix.recorded_at.isoformat(),
    }


def publish_stored_positions(bus: LiveBus) -> Callable[[Sequence[StoredPosition]], None]:
    """A listener for the ingest's ``PositionWriter.on_written`` (positions are written by
    bulk INSERT there, which the session hook does not see): publishes each committed
    position on its route's and merchant's channels."""

    def listener(stored: Sequence[StoredPosition]) -> None:
        for row in stored:
            message = _pending_message(row.position, row.id)
            for channel in channels_for(message):
                bus.publish(channel, message)

    return listener


def publish_taken_positions(bus: LiveBus) -> Callable[[Sequence[PendingPosition]], None]:
    """A listener for ``PositionIngest.on_current``: publishes each fix that moved a driver's
    current position as soon as the ingest takes it, on its route's and merchant's channels
    (``id`` ``None``: the row is written by the next flush of the write buffer, within
    ``position_flush_ms``). Waiting for that flush would add up to its whole interval to what
    a recipient sees; the fix is screened and buffered, and a position is only ever shown as
    the newest state, so nothing downstream depends on the row being there yet."""

    def listener(taken: Sequence[PendingPosition]) -> None:
        for p in taken:
            message = _pending_message(p, None)
            for channel in channels_for(message):
                bus.publish(channel, message)

    return listener


# ``domain.orders.service.ORDER_CREATED`` (importing the service here would be circular).
_ORDER_CREATED = "order.created"


def _routes_of_orders(session: Session, order_ids: set[str]) -> dict[str, str]:
    """Each order's route in a published plan (its current stop), by order id."""
    if not order_ids:
        return {}
    rows = session.connection().execute(
        select(Stop.order_id, Stop.route_id)
        .join(Route, Route.id == Stop.route_id)
        .join(Plan, Plan.id == Route.plan_id)
        .where(Stop.order_id.in_(order_ids), Plan.status == "published")
    )
    return {order_id: route_id for order_id, route_id in rows}


def _collect(session: Session, _ctx: Any) -> None:
    try:
        events = [o for o in session.new if isinstance(o, DeliveryEvent)]
        positions = [o for o in session.new if isinstance(o, Position)]
        if not events and not positions:
            return
        # An order created in this flush is on no plan yet: no look-up for its events.
        created = {e.order_id for e in events if e.type == _ORDER_CREATED}
        lookup = {e.order_id for e in events if e.order_id and not e.route_id} - created
        routes = _routes_of_orders(session, {o for o in lookup if o})
        pending: list[dict[str, Any]] = session.info.setdefault(PENDING_KEY, [])
        for ev in sorted(events, key=lambda e: e.seq or 0):
            route_id = ev.route_id or (routes.get(ev.order_id) if ev.order_id else None)
            pending.append(event_message(ev, route_id))
        pending.extend(position_message(p) for p in positions)
    except Exception:
        ERRORS.inc()
        log.exception("live: could not prepare messages")


def publish_after_commit(session: Session, message: dict[str, Any]) -> None:
    """Queue ``message`` (built with :func:`event_message` or :func:`position_message`, or of
    the same shape) to be published when ``session`` commits: for rows written with Core
    bulk inserts, which the flush hook does not see."""
    session.info.setdefault(PENDING_KEY, []).append(message)


MARKS_KEY = "doorstep_live_savepoints"


def _mark(session: Session, transaction: SessionTransaction) -> None:
    """Remember how many messages were pending when a savepoint began."""
    if transaction.nested:
        marks: dict[int, int] = session.info.setdefault(MARKS_KEY, {})
        marks[id(transaction)] = len(session.info.get(PENDING_KEY, []))


def _discard(session: Session, previous: SessionTransaction) -> None:
    """A rollback drops what it undid: everything for the outer transaction, the messages
    since the savepoint began for a nested one."""
    if previous.parent is None:
        session.info.pop(PENDING_KEY, None)
        session.info.pop(MARKS_KEY, None)
    elif previous.nested:
        mark = session.info.get(MARKS_KEY, {}).pop(id(previous), None)
        pending = session.info.get(PENDING_KEY)
        if mark is not None and pending is not None:
            del pending[mark:]


def install_publisher(factory: sessionmaker[Session], bus: LiveBus) -> None:
    """Make sessions from ``factory`` publish their new events and positions on ``bus``."""

    def _publish(session: Session) -> None:
        # SQLAlchemy also calls after_commit when a SAVEPOINT is released: publish only when
        # the outer transaction commits, or a page would read the database before it has them.
        if session.in_nested_transaction():
            return
        pending: list[dict[str, Any]] = session.info.pop(PENDING_KEY, [])
        session.info.pop(MARKS_KEY, None)
        for message in pending:
            for channel in channels_for(message):
                bus.publish(channel, message)

    event.listen(factory, "after_flush", _collect)
    event.listen(factory, "after_commit", _publish)
    event.listen(factory, "after_transaction_create", _mark)
    event.listen(factory, "after_soft_rollback", _discard)
