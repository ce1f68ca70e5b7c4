"""Reading one merchant's period into :class:`~doorstep.domain.analytics.rows.Period` rows.

Every query is filtered by ``merchant_id``. An order belongs to the period when its promised
window starts on one of the period's local dates (orders without a window: when they were
created); it is counted under the driver of the stop that served it (the last stop with an
actual arrival, else its stop in a published plan) and under the first of the merchant's
active service zones, by name, that covers its address (shapely), else "no zone". An order
whose first attempt (its first ``delivery.failed`` or ``delivery.delivered``) falls in the
period but whose window has moved out of it (failed, then rebooked to another day) is read
too, not listed, for the first-attempt rate of the day the attempt was made.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from shapely import Point, prepare
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from doorstep.domain.analytics.kpis import ATTEMPT_OUTCOMES
from doorstep.domain.analytics.rows import (
    NO_ZONE,
    UNASSIGNED,
    EventRow,
    MessageRow,
    OrderRow,
    Period,
    RouteRow,
    local_bounds,
)
from doorstep.domain.dispatch.models import Driver, Plan, Route, Stop
from doorstep.domain.notifications.models import OutboxMessage
from doorstep.domain.orders.models import DeliveryEvent, Order
from doorstep.domain.slots.models import ServiceZone

CHUNK = 500  # ids per IN (...) list: well under SQLite's parameter limit


def _chunks(ids: Sequence[str]) -> Iterator[Sequence[str]]:
    for i in range(0, len(ids), CHUNK):
        yield ids[i : i + CHUNK]


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class _Zones:
    """The merchant's active zones, prepared once, tested in name order."""

    def __init__(self, session: Session, merchant_id: str) -> None:
        self.zones: list[tuple[str, str, list[float], BaseGeometry]] = []
        query = (
            select(ServiceZone)
            .where(ServiceZone.merchant_id == merchant_id, ServiceZone.active)
            .order_by(ServiceZone.name, ServiceZone.id)
        )
        for zone in session.scalars(query):
            geometry = shape(zone.geometry)
            prepare(geometry)
            self.zones.append((zone.id, zone.name, list(zone.bbox or []), geometry))

    def of(self, lat: float, lon: float) -> tuple[str, str]:
        at = Point(lon, lat)
        for zone_id, name, bbox, geometry in self.zones:
            if len(bbox) == 4 and not (bbox[0] <= lon <= bbox[2] and bbox[1] <= lat <= bbox[3]):
                continue
            if geometry.covers(at):
                return zone_id, name
        return NO_ZONE, "No zone"


def _drivers(session: Session, merchant_id: str, ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    """order id -> (driver id, name) of the stop that served it, or of its published stop."""
    best: dict[str, tuple[tuple[Any, ...], str, str]] = {}
    for chunk in _chunks(ids):
        rows = session.execute(
            select(
                Stop.order_id,
                Stop.actual_arrival,
                Route.start_at,
                Plan.status,
                Driver.id,
                Driver.name,
            )
            .join(Route, Route.id == Stop.route_id)
            .join(Plan, Plan.id == Route.plan_id)
            .join(Driver, Driver.id == Route.driver_id)
            .where(Stop.merchant_id == merchant_id, Stop.order_id.in_(chunk))
        )
        for order_id, arrival, start_at, plan_status, driver_id, name in rows:
            if arrival is None and plan_status != "published":
                continue
            rank = (
                arrival is not None,
                _utc(arrival).timestamp() if arrival is not None else 0.0,
                _utc(start_at).timestamp() if start_at is not None else 0.0,
            )
            if order_id not in best or rank > best[order_id][0]:
                best[order_id] = (rank, driver_id, name)
    return {order_id: (d, n) for order_id, (_, d, n) in best.items()}


def load_period(
    session: Session, merchant_id: str, timezone: str, start: date, end: date
) -> Period:
    """Everything the KPIs of ``start``..``end`` (local dates, both included) read."""
    tz = ZoneInfo(timezone)
    lo, hi = local_bounds(start, end, tz)
    orders = list(
        session.scalars(
            select(Order)
            .where(
                Order.merchant_id == merchant_id,
                or_(
                    and_(Order.window_start >= lo, Order.window_start < hi),
                    and_(
                        Order.window_start.is_(None), Order.created_at >= lo, Order.created_at < hi
                    ),
                ),
            )
            .order_by(Order.created_at, Order.id)
        )
    )
    listed = {o.id for o in orders}
    first_tried = {
        order_id: _utc(at)
        for order_id, at in _first_attempts_in(session, merchant_id, lo, hi)
        if order_id not in listed
    }
    for chunk in _chunks(sorted(first_tried)):
        orders.extend(
            session.scalars(
                select(Order)
                .where(Order.merchant_id == merchant_id, Order.id.in_(chunk))
                .order_by(Order.created_at, Order.id)
            )
        )
    ids = [o.id for o in orders]
    drivers = _drivers(session, merchant_id, ids)
    zones = _Zones(session, merchant_id)
    order_rows = []
    for o in orders:
        driver_id, driver_name = drivers.get(o.id, (UNASSIGNED, "Unassigned"))
        zone_id, zone_name = (
            zones.of(o.lat, o.lon)
            if o.lat is not None and o.lon is not None
            else (NO_ZONE, "No zone")
        )
        anchor = first_tried.get(o.id) or o.window_start or o.created_at
        order_rows.append(
            OrderRow(
                id=o.id,
                status=o.status,
                window_start=None if o.window_start is None else _utc(o.window_start),
                window_end=None if o.window_end is None else _utc(o.window_end),
                day=_utc(anchor).astimezone(tz).date(),
                driver_id=driver_id,
                driver_name=driver_name,
                zone_id=zone_id,
                zone_name=zone_name,
                listed=o.id in listed,
            )
        )
    events: list[EventRow] = []
    messages: list[MessageRow] = []
    for chunk in _chunks(ids):
        for seq, event_order, type_, occurred_at, data in session.execute(
            select(
                DeliveryEvent.seq,
                DeliveryEvent.order_id,
                DeliveryEvent.type,
                DeliveryEvent.occurred_at,
                DeliveryEvent.data,
            ).where(DeliveryEvent.merchant_id == merchant_id, DeliveryEvent.order_id.in_(chunk))
        ):
            if event_order is not None:
                row_ev = EventRow(seq, event_order, type_, _utc(occurred_at), dict(data or {}))
                events.append(row_ev)
        for msg_order, channel, topic, target, status, created_at, event_id in session.execute(
            select(
                OutboxMessage.order_id,
                OutboxMessage.channel,
                OutboxMessage.topic,
                OutboxMessage.target,
                OutboxMessage.status,
                OutboxMessage.created_at,
                OutboxMessage.event_id,
            ).where(OutboxMessage.merchant_id == merchant_id, OutboxMessage.order_id.in_(chunk))
        ):
            if msg_order is not None:
                row = MessageRow(
                    msg_order, channel, topic, target, status, _utc(created_at), event_id
                )
                messages.append(row)
    return Period(
        start=start,
        end=end,
        timezone=timezone,
        orders=order_rows,
        events=events,
        messages=messages,
        routes=_routes(session, merchant_id, start, end),
    )


def _first_attempts_in(
    session: Session, merchant_id: str, lo: datetime, hi: datetime
) -> list[tuple[str, datetime]]:
    """(order id, when) of the merchant's orders whose first attempt ended in ``[lo, hi)``:
    the orders with an attempt in the period (index on merchant, type and time), kept when
    none of their attempts came earlier."""
    attempts = (
        DeliveryEvent.merchant_id == merchant_id,
        DeliveryEvent.type.in_(ATTEMPT_OUTCOMES),
    )
    in_period = select(DeliveryEvent.order_id).where(
        *attempts, DeliveryEvent.occurred_at >= lo, DeliveryEvent.occurred_at < hi
    )
    first = func.min(DeliveryEvent.occurred_at)
    rows = session.execute(
        select(DeliveryEvent.order_id, first)
        .where(*attempts, DeliveryEvent.order_id.in_(in_period))
        .group_by(DeliveryEvent.order_id)
        .having(first >= lo)
    )
    return [(str(order_id), at) for order_id, at in rows]


def _routes(session: Session, merchant_id: str, start: date, end: date) -> list[RouteRow]:
    """The routes with stops of the merchant's published plans dated ``start``..``end`` (a
    shift the plan gave no stop drove nothing: it is neither a route nor a driver's row)."""
    stops = (
        select(Stop.route_id, func.count(Stop.id).label("n"))
        .where(Stop.merchant_id == merchant_id)
        .group_by(Stop.route_id)
        .subquery()
    )
    rows = session.execute(
        select(Route, Plan.date, Driver.name, stops.c.n)
        .join(Plan, Plan.id == Route.plan_id)
        .join(Driver, Driver.id == Route.driver_id)
        .join(stops, stops.c.route_id == Route.id)
        .where(
            Route.merchant_id == merchant_id,
            Plan.merchant_id == merchant_id,
            Plan.status == "published",
            Plan.date >= start,
            Plan.date <= end,
        )
    )
    return [
        RouteRow(
            id=route.id,
            day=day,
            driver_id=route.driver_id,
            driver_name=name,
            status=route.status,
            stops=int(n),
            distance_m=float(route.distance_m or 0.0),
            driving_s=float(route.driving_s or 0.0),
        )
        for route, day, name, n in rows
    ]
