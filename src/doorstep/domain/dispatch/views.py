"""Reading plans: one plan with everything its answer shows, or a day's plans.

A :class:`PlanView` is a plan with its routes and stops loaded, plus the orders, drivers and
vehicles they refer to and the shifts it could not use (``stats["skipped_shifts"]``), in a
fixed number of queries whatever the plan's size.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import Session, selectinload

from doorstep.domain.accounts.models import Merchant
from doorstep.domain.dispatch.models import Driver, Plan, Route, Shift, Vehicle
from doorstep.domain.errors import NotFound
from doorstep.domain.orders.models import Order
from doorstep.domain.orders.queries import decode_cursor, encode_cursor

T = TypeVar("T")


@dataclass
class PlanView:
    """A plan with what its answer needs, in the merchant's timezone. ``shifts`` holds the
    shifts the plan could not use that still exist; ``drivers`` and ``vehicles`` hold theirs
    as well as the routes'."""

    plan: Plan
    orders: dict[str, Order]
    drivers: dict[str, Driver]
    vehicles: dict[str, Vehicle]
    tz: ZoneInfo
    shifts: dict[str, Shift] = field(default_factory=dict)


def skipped_shifts(plan: Plan) -> list[dict[str, Any]]:
    """The shifts the plan could not use, as planning noted them (``shift_id``, ``reason`` and
    maybe ``detail``); entries without a shift id are left out."""
    noted = (plan.stats or {}).get("skipped_shifts") or []
    return [s for s in noted if isinstance(s, dict) and isinstance(s.get("shift_id"), str)]


def rows_by_id(
    session: Session, model: type[T], merchant_id: str, ids: Iterable[str]
) -> dict[str, T]:
    """The merchant's rows of ``model`` with these ids, by id, in one query (none for no ids)."""
    wanted = set(ids)
    if not wanted:
        return {}
    owned = cast(Any, model)
    rows = session.scalars(
        select(model).where(owned.merchant_id == merchant_id, owned.id.in_(wanted))
    )
    return {cast(Any, row).id: row for row in rows}


def _plans_query(merchant_id: str) -> Select[Plan]:
    return (
        select(Plan)
        .where(Plan.merchant_id == merchant_id)
        .options(selectinload(Plan.routes).selectinload(Route.stops))
    )


def views_of(session: Session, merchant_id: str, plans: list[Plan]) -> list[PlanView]:
    """Views of several plans, with their orders, drivers and vehicles loaded at once."""
    merchant = session.get(Merchant, merchant_id)
    if merchant is None:
        raise NotFound("no such merchant")
    tz = ZoneInfo(merchant.timezone)
    routes = [r for p in plans for r in p.routes]
    order_ids = {s.order_id for r in routes for s in r.stops}
    order_ids |= {u["order_id"] for p in plans for u in p.unassigned or []}
    orders = rows_by_id(session, Order, merchant_id, order_ids)
    shift_ids = {s["shift_id"] for p in plans for s in skipped_shifts(p)}
    shifts = rows_by_id(session, Shift, merchant_id, shift_ids)
    driver_ids = {r.driver_id for r in routes} | {s.driver_id for s in shifts.values()}
    drivers = rows_by_id(session, Driver, merchant_id, driver_ids)
    vehicle_ids = {r.vehicle_id for r in routes} | {s.vehicle_id for s in shifts.values()}
    vehicles = rows_by_id(session, Vehicle, merchant_id, vehicle_ids)
    return [PlanView(p, orders, drivers, vehicles, tz, shifts) for p in plans]


def load_plan(session: Session, merchant_id: str, plan_id: str) -> Plan:
    """The merchant's plan with its routes and stops, or 404."""
    plan = session.scalar(_plans_query(merchant_id).where(Plan.id == plan_id))
    if plan is None:
        raise NotFound("no such plan")
    return plan


def load_plan_view(session: Session, merchant_id: str, plan_id: str) -> PlanView:
    """One of the merchant's plans as a view, or 404."""
    return views_of(session, merchant_id, [load_plan(session, merchant_id, plan_id)])[0]


def list_plans(
    session: Session,
    merchant_id: str,
    *,
    day: date | None = None,
    depot_id: str | None = None,
    limit: int = 100,
) -> list[PlanView]:
    """The merchant's plans, newest first, optionally of one day and/or one depot."""
    stmt = _plans_query(merchant_id)
    if day is not None:
        stmt = stmt.where(Plan.date == day)
    if depot_id is not None:
        stmt = stmt.where(Plan.depot_id == depot_id)
    plans = list(
        session.scalars(stmt.order_by(Plan.created_at.desc(), Plan.id.desc()).limit(limit))
    )
    return views_of(session, merchant_id, plans)


def list_plans_page(
    session: Session,
    merchant_id: str,
    *,
    day: date | None = None,
    depot_id: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[PlanView], str | None]:
    """One page of the merchant's plans, newest first, and the cursor of the next page (None
    on the last), paged as ``GET /v1/orders`` is: keyset on (created_at, id)."""
    stmt = _plans_query(merchant_id)
    if day is not None:
        stmt = stmt.where(Plan.date == day)
    if depot_id is not None:
        stmt = stmt.where(Plan.depot_id == depot_id)
    if cursor is not None:
        at, last_id = decode_cursor(cursor)
        stmt = stmt.where(or_(Plan.created_at < at, and_(Plan.created_at == at, Plan.id < last_id)))
    rows = list(
        session.scalars(stmt.order_by(Plan.created_at.desc(), Plan.id.desc()).limit(limit + 1))
    )
    plans, more = rows[:limit], len(rows) > limit
    following = encode_cursor(plans[-1].created_at, plans[-1].id) if more and plans else None
    return views_of(session, merchant_id, plans), following
