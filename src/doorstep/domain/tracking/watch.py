"""What the dispatcher watches live: each stop's state (late, at risk, fine) and each route's
latest vehicle position.

A stop is **late** when its delivery is ``delivery_delayed``, or its window has ended and it is
not delivered; **at risk** when the expected arrival (the ETA engine's latest ``eta``, the
centre of its calibrated window, else the stop's ``eta``/planned arrival) falls after the end of
its window: more likely late than not. The window's ``latest`` edge is not the test: a 90 %
window a few hours ahead is wide, and its far edge passes the end of many windows that are
kept (the simulated day of seed 7 at the afternoon routes' start: 48 of 166 open stops "at
risk" by ``latest``, 6 by ``eta``, 12 arrived late). When even the window's
``earliest`` passes the end, the ETA engine has made the delivery ``delivery_delayed`` (late).
Late stops come first, then those at risk, then the rest by window end.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from doorstep.domain.dispatch.models import Stop
from doorstep.domain.notifications.outbox import MESSAGE_EVENT_PREFIX
from doorstep.domain.orders.models import DeliveryEvent, Order
from doorstep.domain.orders.status import Status
from doorstep.domain.tracking.models import Position

FINISHED = frozenset({Status.DELIVERED, Status.CANCELLED, Status.RETURN_TO_SENDER})


@dataclass(frozen=True)
class StopWatch:
    order_id: str
    reference: str
    status: str
    window_end: datetime | None
    expected: datetime | None
    late: bool
    at_risk: bool

    @property
    def attention(self) -> str:
        """``late``, ``at_risk`` or ``""``."""
        return "late" if self.late else "at_risk" if self.at_risk else ""


def _parse(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _latest_etas(session: Session, merchant_id: str, order_ids: list[str]) -> dict[str, datetime]:
    """The latest ``delivery.eta_updated`` estimate (its ``eta``) of each order."""
    if not order_ids:
        return {}
    newest = (
        select(DeliveryEvent.order_id, func.max(DeliveryEvent.seq).label("seq"))
        .where(
            DeliveryEvent.merchant_id == merchant_id,
            DeliveryEvent.order_id.in_(order_ids),
            DeliveryEvent.type == "delivery.eta_updated",
        )
        .group_by(DeliveryEvent.order_id)
        .subquery()
    )
    rows = session.execute(
        select(DeliveryEvent.order_id, DeliveryEvent.data).join(
            newest, DeliveryEvent.seq == newest.c.seq
        )
    )
    out: dict[str, datetime] = {}
    for order_id, data in rows:
        when = _parse((data or {}).get("eta"))
        if order_id is not None and when is not None:
            out[order_id] = when
    return out


def watch_stops(
    session: Session, merchant_id: str, order_ids: Iterable[str], now: datetime
) -> list[StopWatch]:
    """The state of the merchant's orders ``order_ids`` as stops, late and at-risk first."""
    ids = list(dict.fromkeys(order_ids))
    if not ids:
        return []
    orders = session.scalars(
        select(Order).where(Order.merchant_id == merchant_id, Order.id.in_(ids))
    ).all()
    stops = {
        s.order_id: s
        for s in session.scalars(
            select(Stop).where(Stop.merchant_id == merchant_id, Stop.order_id.in_(ids))
        )
    }
    etas = _latest_etas(session, merchant_id, ids)
    out: list[StopWatch] = []
    for order in orders:
        status = Status(order.status)
        stop = stops.get(order.id)
        expected = etas.get(order.id) or (
            (stop.eta or stop.planned_arrival) if stop is not None else None
        )
        finished = status in FINISHED
        late = not finished and (
            status is Status.DELIVERY_DELAYED
            or (order.window_end is not None and now > order.window_end)
        )
        at_risk = (
            not finished
            and not late
            and expected is not None
            and order.window_end is not None
            and expected > order.window_end
        )
        out.append(
            StopWatch(
                order_id=order.id,
                reference=order.reference,
                status=status.value,
                window_end=order.window_end,
                expected=expected,
                late=late,
                at_risk=at_risk,
            )
        )
    out.sort(
        key=lambda w: (
            0 if w.late else 1 if w.at_risk else 2,
            w.window_end.timestamp() if w.window_end is not None else float("inf"),
        )
    )
    return out


@dataclass(frozen=True)
class VehiclePosition:
    route_id: str
    driver_id: str
    lat: float
    lon: float
    heading: float | None
    recorded_at: datetime


def latest_positions(
    session: Session, merchant_id: str, route_ids: Iterable[str]
) -> list[VehiclePosition]:
    """The newest position of each of the merchant's routes ``route_ids`` that has one."""
    ids = list(dict.fromkeys(route_ids))
    if not ids:
        return []
    newest = (
        select(Position.route_id, func.max(Position.recorded_at).label("at"))
        .where(Position.merchant_id == merchant_id, Position.route_id.in_(ids))
        .group_by(Position.route_id)
        .subquery()
    )
    rows = session.scalars(
        select(Position)
        .join(
            newest,
            (Position.route_id == newest.c.route_id) & (Position.recorded_at == newest.c.at),
        )
        .where(Position.merchant_id == merchant_id)
        .order_by(Position.id)
    )
    seen: dict[str, VehiclePosition] = {}
    for p in rows:
        if p.route_id is None:
            continue
        seen[p.route_id] = VehiclePosition(
            p.route_id, p.driver_id, p.lat, p.lon, p.heading_deg, p.recorded_at
        )
    return list(seen.values())


def orders_changed_since(
    session: Session, merchant_id: str, after_seq: int, limit: int = 500
) -> list[tuple[int, str]]:
    """``(seq, order_id)`` of the merchant's newest event per order after ``after_seq`` (for a
    console stream reconnecting with ``Last-Event-ID``), oldest first, at most ``limit``."""
    rows = session.execute(
        select(func.max(DeliveryEvent.seq), DeliveryEvent.order_id)
        .where(
            DeliveryEvent.merchant_id == merchant_id,
            DeliveryEvent.seq > after_seq,
            DeliveryEvent.order_id.is_not(None),
            # Messages about an order (message.sent, ...) change nothing on the map.
            ~DeliveryEvent.type.startswith(MESSAGE_EVENT_PREFIX),
        )
        .group_by(DeliveryEvent.order_id)
        .order_by(func.max(DeliveryEvent.seq))
        .limit(limit)
    )
    return [(int(seq), str(order_id)) for seq, order_id in rows]


def became_late(
    session: Session, merchant_id: str, since: datetime, now: datetime, limit: int = 500
) -> list[StopWatch]:
    """Stops whose window ended in ``(since, now]`` and are not delivered: late by the clock
    alone, with no event to say so (the dispatcher's stream checks every minute)."""
    ids = session.scalars(
        select(Order.id)
        .join(Stop, Stop.order_id == Order.id)
        .where(
            Order.merchant_id == merchant_id,
            Order.window_end > since,
            Order.window_end <= now,
            Order.status.not_in([s.value for s in FINISHED]),
        )
        .limit(limit)
    ).all()
    return watch_stops(session, merchant_id, ids, now)
