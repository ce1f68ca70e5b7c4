"""Reading plans: one plan with everything its answer shows, or a day's plans.

A :class:`PlanView` is a plan with its routes and stops loaded, plus the orders, drivers and
vehicles they refer to, in a fixed number of queries whatever the plan's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, selectinload

from doorstep.domain.accounts.models import Merchant
from doorstep.domain.dispatch.models import Driver, Plan, Route, Vehicle
from doorstep.domain.errors import NotFound
from doorstep.domain.orders.models import Order


@dataclass
class PlanView:
    """A plan with what its answer needs, in the merchant's timezone."""

    plan: Plan
    orders: dict[str, Order]
    drivers: dict[str, Driver]
    vehicles: dict[str, Vehicle]
    tz: ZoneInfo


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
    orders = {
        o.id: o
        for o in session.scalars(
            select(Order).where(Order.merchant_id == merchant_id, Order.id.in_(order_ids))
        )
    }
    drivers = {
        d.id: d
        for d in session.scalars(
            select(Driver).where(
                Driver.merchant_id == merchant_id, Driver.id.in_({r.driver_id for r in routes})
            )
        )
    }
    vehicles = {
        v.id: v
        for v in session.scalars(
            select(Vehicle).where(
                Vehicle.merchant_id == merchant_id, Vehicle.id.in_({r.vehicle_id for r in routes})
            )
        )
    }
    return [PlanView(p, orders, drivers, vehicles, tz) for p in plans]


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
