"""Reading orders, always within one merchant.

:func:`get_order` is the access function: every verb and handler loads an order through it, so
another merchant's order is indistinguishable from a missing one (both are 404). Lists page with
an opaque keyset cursor over ``(created_at, id)``, newest first, which stays stable while new
orders arrive.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import Session, joinedload, selectinload

from doorstep.domain.accounts.models import User
from doorstep.domain.errors import DomainError, FieldError, NotFound
from doorstep.domain.orders.events import timeline
from doorstep.domain.orders.models import DeliveryEvent, Order
from doorstep.domain.orders.status import Status

_CURSOR_VERSION = 1
_IN_CHUNK = 10_000  # under SQLite's 32,766 and PostgreSQL's 65,535 bound parameters


class InvalidCursor(DomainError):
    title = "Invalid cursor"
    type_slug = "invalid-cursor"


@dataclass(frozen=True)
class OrderFilters:
    """What ``GET /v1/orders`` can filter on; empty means no filter."""

    statuses: tuple[Status, ...] = ()
    window_date: date | None = None  # a calendar day in the merchant's timezone
    reference: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


@dataclass(frozen=True)
class OrderPageRows:
    """One page of orders (parcels loaded) and the cursor of the next page, if any."""

    orders: list[Order]
    next_cursor: str | None


def get_order(
    session: Session, merchant_id: str, order_id: str, *, for_update: bool = False
) -> Order:
    """The merchant's order ``order_id`` with its parcels, or :class:`NotFound`."""
    query = select(Order).where(Order.id == order_id, Order.merchant_id == merchant_id)
    if for_update:
        # Row locks do not reach the outer side of a join: parcels in a second statement.
        query = query.options(selectinload(Order.parcels)).with_for_update()
        order = session.scalar(query)
    else:  # order and parcels in one statement
        query = query.options(joinedload(Order.parcels))
        order = session.execute(query).unique().scalar_one_or_none()
    if order is None:
        raise NotFound(f"no order {order_id!r}")
    return order


def encode_cursor(created_at: datetime, order_id: str) -> str:
    """An opaque cursor pointing just after ``(created_at, order_id)``."""
    raw = json.dumps([_CURSOR_VERSION, created_at.isoformat(), order_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The position a cursor encodes, or :class:`InvalidCursor` (400)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        version, created, order_id = json.loads(raw)
        at = datetime.fromisoformat(created)
        if version != _CURSOR_VERSION or at.tzinfo is None or not isinstance(order_id, str):
            raise ValueError(cursor)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidCursor(
            "the cursor is not one this API gave out; start again without it",
            errors=[FieldError("cursor", "not a valid cursor")],
        ) from exc
    return at, order_id


def day_bounds(day: date, timezone: str) -> tuple[datetime, datetime]:
    """The first instant of ``day`` in ``timezone`` and of the day after, as aware times."""
    tz = ZoneInfo(timezone)
    start = datetime.combine(day, time(0), tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tz)
    return start, end


def _filtered(query: Select[Order], filters: OrderFilters, timezone: str) -> Select[Order]:
    if filters.statuses:
        query = query.where(Order.status.in_([s.value for s in filters.statuses]))
    if filters.window_date is not None:
        start, end = day_bounds(filters.window_date, timezone)
        query = query.where(Order.window_start >= start, Order.window_start < end)
    if filters.reference is not None:
        query = query.where(Order.reference == filters.reference)
    if filters.created_after is not None:
        query = query.where(Order.created_at > filters.created_after)
    if filters.created_before is not None:
        query = query.where(Order.created_at < filters.created_before)
    return query


def list_orders(
    session: Session,
    merchant_id: str,
    timezone: str,
    filters: OrderFilters,
    *,
    limit: int,
    cursor: str | None = None,
) -> OrderPageRows:
    """Up to ``limit`` of the merchant's orders matching ``filters``, newest first.

    ``window_date`` is read in ``timezone`` (the merchant's): orders whose window starts on
    that local day."""
    query = _filtered(select(Order).where(Order.merchant_id == merchant_id), filters, timezone)
    if cursor is not None:
        at, last_id = decode_cursor(cursor)
        query = query.where(
            or_(Order.created_at < at, and_(Order.created_at == at, Order.id < last_id))
        )
    query = (
        query.order_by(Order.created_at.desc(), Order.id.desc())
        .limit(limit + 1)
        .options(selectinload(Order.parcels))
    )
    rows = list(session.scalars(query))
    page, more = rows[:limit], len(rows) > limit
    next_cursor = encode_cursor(page[-1].created_at, page[-1].id) if more and page else None
    return OrderPageRows(orders=page, next_cursor=next_cursor)


def order_timeline(session: Session, merchant_id: str, order_id: str) -> list[DeliveryEvent]:
    """Every event of the merchant's order, oldest first; :class:`NotFound` otherwise."""
    exists = session.scalar(
        select(Order.id).where(Order.id == order_id, Order.merchant_id == merchant_id)
    )
    if exists is None:
        raise NotFound(f"no order {order_id!r}")
    return timeline(session, merchant_id, order_id)


@dataclass(frozen=True)
class OrderHistory:
    """An order, its events oldest first, and the names of the merchant's console users (by
    user id), so a timeline can say who did what."""

    order: Order
    events: list[DeliveryEvent]
    user_names: dict[str, str]


def order_history(session: Session, merchant_id: str, order_id: str) -> OrderHistory:
    """The merchant's order with its timeline and the names of those who acted on it;
    :class:`NotFound` for another merchant's or no order."""
    order = get_order(session, merchant_id, order_id)
    events = timeline(session, merchant_id, order_id)
    user_ids = {e.actor_id for e in events if e.actor_type == "user" and e.actor_id}
    names: dict[str, str] = {}
    if user_ids:
        rows = session.execute(
            select(User.id, User.name).where(User.merchant_id == merchant_id, User.id.in_(user_ids))
        )
        names = {user_id: name for user_id, name in rows}
    return OrderHistory(order=order, events=events, user_names=names)


def existing_references(session: Session, merchant_id: str, references: Iterable[str]) -> set[str]:
    """Which of ``references`` the merchant's orders already use.

    Few, large ``IN`` lists on purpose: right after a bulk import PostgreSQL's statistics are
    stale and it may scan the table; with one query per 10,000 references it scans once and
    hashes the list, while 500-reference chunks took seconds (one scan each)."""
    wanted = list(dict.fromkeys(references))
    found: set[str] = set()
    for i in range(0, len(wanted), _IN_CHUNK):
        chunk = wanted[i : i + _IN_CHUNK]
        found.update(
            session.scalars(
                select(Order.reference).where(
                    Order.merchant_id == merchant_id, Order.reference.in_(chunk)
                )
            )
        )
    return found
