"""Finding orders for the console's orders screen: free-text search (reference, recipient's
name, street), filters (the window's day, statuses, a service zone) and a choice of sort,
paged with an opaque keyset cursor that stays stable while orders arrive or change elsewhere.

Every query is scoped to one merchant. A zone filter keeps the orders whose point lies in the
merchant's zone: the zone's bounding box narrows the rows in SQL, shapely decides the rest, so
a page is filled from as many rows as it takes.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from shapely import Point, prepare
from shapely.geometry import shape
from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session

from doorstep.domain.errors import FieldError
from doorstep.domain.orders.models import Order
from doorstep.domain.orders.queries import InvalidCursor, day_bounds
from doorstep.domain.orders.status import Status
from doorstep.domain.slots.zones import access_zone

MAX_QUERY = 100  # characters of search text kept
_ZONE_BATCH = 500  # rows read at a time while a zone filter fills a page


class Sort(StrEnum):
    """How the orders screen may be sorted; each is a total order (``id`` breaks ties)."""

    NEWEST = "newest"  # created, newest first
    WINDOW = "window"  # the window's start, soonest first; orders without a window last
    REFERENCE = "reference"  # A to Z
    NAME = "name"  # the recipient's name, A to Z


SORT_LABELS: dict[Sort, str] = {
    Sort.NEWEST: "Newest first",
    Sort.WINDOW: "Window, soonest first",
    Sort.REFERENCE: "Reference",
    Sort.NAME: "Recipient's name",
}


@dataclass(frozen=True)
class OrderSearch:
    """What the orders screen asks for; empty fields do not filter."""

    text: str = ""
    day: date | None = None  # the window starts on this day, in the merchant's timezone
    statuses: tuple[Status, ...] = ()
    zone_id: str | None = None
    sort: Sort = Sort.NEWEST


@dataclass(frozen=True)
class SearchPage:
    orders: list[Order]
    next_cursor: str | None
    total: int  # how many orders match, on every page


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


def _sort_value(order: Order, sort: Sort) -> Any:
    if sort is Sort.NEWEST:
        return order.created_at.isoformat()
    if sort is Sort.WINDOW:
        return order.window_start.isoformat() if order.window_start else None
    if sort is Sort.REFERENCE:
        return order.reference
    return order.recipient_name.lower()


def encode_cursor(sort: Sort, order: Order) -> str:
    """A cursor pointing just after ``order`` in ``sort``'s order."""
    raw = json.dumps([sort.value, _sort_value(order, sort), order.id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: Sort) -> tuple[Any, str]:
    """The sort value and id a cursor of ``sort`` points after; :class:`InvalidCursor` else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        name, value, order_id = json.loads(raw)
        if name != sort.value or not isinstance(order_id, str):
            raise ValueError(cursor)
        if sort in (Sort.NEWEST, Sort.WINDOW) and value is not None:
            value = datetime.fromisoformat(value)
            if value.tzinfo is None:
                raise ValueError(cursor)
        elif sort is not Sort.WINDOW and not isinstance(value, str):
            raise ValueError(cursor)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidCursor(
            "the page link is out of date; start again from the first page",
            errors=[FieldError("cursor", "not a valid cursor")],
        ) from exc
    return value, order_id


def _after(sort: Sort, value: Any, last_id: str) -> ColumnElement[bool]:
    """Rows after ``(value, last_id)`` in ``sort``'s order."""
    if sort is Sort.NEWEST:
        return or_(Order.created_at < value, and_(Order.created_at == value, Order.id < last_id))
    if sort is Sort.WINDOW:
        if value is None:  # among the orders without a window, which come last
            return and_(Order.window_start.is_(None), Order.id > last_id)
        return or_(
            Order.window_start > value,
            and_(Order.window_start == value, Order.id > last_id),
            Order.window_start.is_(None),
        )
    column = Order.reference if sort is Sort.REFERENCE else func.lower(Order.recipient_name)
    return or_(column > value, and_(column == value, Order.id > last_id))


def _ordered(query: Select[Any], sort: Sort) -> Select[Any]:
    if sort is Sort.NEWEST:
        return query.order_by(Order.created_at.desc(), Order.id.desc())
    if sort is Sort.WINDOW:
        return query.order_by(Order.window_start.is_(None), Order.window_start, Order.id)
    if sort is Sort.REFERENCE:
        return query.order_by(Order.reference, Order.id)
    return query.order_by(func.lower(Order.recipient_name), Order.id)


def _filtered(
    query: Select[Any], merchant_id: str, timezone: str, search: OrderSearch
) -> Select[Any]:
    query = query.where(Order.merchant_id == merchant_id)
    text = search.text.strip()[:MAX_QUERY]
    if text:
        pattern = _like(text)
        query = query.where(
            or_(
                func.lower(Order.reference).like(pattern, escape="\\"),
                func.lower(Order.recipient_name).like(pattern, escape="\\"),
                func.lower(Order.address_line1).like(pattern, escape="\\"),
            )
        )
    if search.day is not None:
        start, end = day_bounds(search.day, timezone)
        query = query.where(Order.window_start >= start, Order.window_start < end)
    if search.statuses:
        query = query.where(Order.status.in_([s.value for s in search.statuses]))
    return query


@dataclass(frozen=True)
class _ZoneTest:
    """A zone's shape, prepared, with its bounding box for the SQL side."""

    shape: Any
    bbox: Sequence[float]

    def holds(self, order: Order) -> bool:
        return bool(self.shape.covers(Point(order.lon, order.lat)))


def _zone_test(session: Session, merchant_id: str, zone_id: str) -> _ZoneTest:
    zone = access_zone(session, merchant_id, zone_id)  # another merchant's zone is a 404
    geometry = shape(zone.geometry)
    prepare(geometry)
    return _ZoneTest(geometry, zone.bbox or geometry.bounds)


def search_orders(
    session: Session,
    merchant_id: str,
    timezone: str,
    search: OrderSearch,
    *,
    limit: int,
    cursor: str | None = None,
) -> SearchPage:
    """Up to ``limit`` of the merchant's orders matching ``search`` in its sort order, the
    cursor of the next page (None on the last) and how many match in all."""
    base = _filtered(select(Order), merchant_id, timezone, search)
    count = _filtered(select(func.count(Order.id)), merchant_id, timezone, search)
    zone = _zone_test(session, merchant_id, search.zone_id) if search.zone_id else None
    if zone is not None:
        x0, y0, x1, y1 = zone.bbox
        box = (Order.lon >= x0, Order.lon <= x1, Order.lat >= y0, Order.lat <= y1)
        base, count = base.where(*box), count.where(*box)
    query = _ordered(base, search.sort)
    after = decode_cursor(cursor, search.sort) if cursor else None
    if zone is None:
        if after is not None:
            query = query.where(_after(search.sort, *after))
        rows: list[Order] = list(session.scalars(query.limit(limit + 1)))
        total = session.scalar(count) or 0
    else:
        rows = []
        batch: list[Order]
        while len(rows) <= limit:
            batch_query = query if after is None else query.where(_after(search.sort, *after))
            batch = list(session.scalars(batch_query.limit(_ZONE_BATCH)))
            rows.extend(o for o in batch if zone.holds(o))
            if len(batch) < _ZONE_BATCH:
                break
            last = batch[-1]
            after = (_sort_key(last, search.sort), last.id)
        total = sum(1 for o in session.scalars(count.with_only_columns(Order)) if zone.holds(o))
    page, more = rows[:limit], len(rows) > limit
    next_cursor = encode_cursor(search.sort, page[-1]) if more and page else None
    return SearchPage(orders=page, next_cursor=next_cursor, total=total)


def _sort_key(order: Order, sort: Sort) -> Any:
    """The value :func:`_after` compares for ``order`` (what a cursor decodes to)."""
    if sort is Sort.NEWEST:
        return order.created_at
    if sort is Sort.WINDOW:
        return order.window_start
    return _sort_value(order, sort)
