"""The one query the API, the console page and the report share: :func:`kpi_report`."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from doorstep.domain.accounts.models import Merchant
from doorstep.domain.analytics.kpis import all_facts, by_day, by_driver, by_zone, route_kpis
from doorstep.domain.analytics.kpis import summarise as summarise_facts
from doorstep.domain.analytics.load import load_period
from doorstep.domain.analytics.rows import Period
from doorstep.domain.analytics.schemas import KpiReport
from doorstep.domain.errors import FieldError, NotFound, Unprocessable

MAX_DAYS = 92  # a quarter: the answer stays a few hundred kilobytes at most
DEFAULT_DAYS = 7
EARLIEST, LATEST = date(2000, 1, 1), date(2999, 12, 31)  # far from datetime's edges


def resolve_range(
    start: date | None, end: date | None, now: datetime, timezone: str
) -> tuple[date, date]:
    """The period asked for: both dates given, or ending today (local) / ``DEFAULT_DAYS`` long.
    Refuses an end before the start and a span over ``MAX_DAYS`` days (422)."""
    today = now.astimezone(ZoneInfo(timezone)).date()
    for name, value in (("from", start), ("to", end)):
        if value is not None and not EARLIEST <= value <= LATEST:
            raise Unprocessable(
                f"dates are from {EARLIEST} to {LATEST}",
                errors=[FieldError(name, f"must be from {EARLIEST} to {LATEST}", "range")],
            )
    if end is None:
        end = today if start is None else start + timedelta(days=DEFAULT_DAYS - 1)
    if start is None:
        start = end - timedelta(days=DEFAULT_DAYS - 1)
    if end < start:
        raise Unprocessable(
            "the period ends before it starts",
            errors=[FieldError("to", "must be on or after from", "range")],
        )
    if (end - start).days + 1 > MAX_DAYS:
        raise Unprocessable(
            f"a period is at most {MAX_DAYS} days",
            errors=[FieldError("to", f"at most {MAX_DAYS} days after from", "range")],
        )
    return start, end


def report_of(period: Period, now: datetime) -> KpiReport:
    """The KPIs of a loaded period: overall, by day, driver and zone, and its routes."""
    facts = all_facts(period)
    overall = summarise_facts(facts, period.routes)
    return KpiReport(
        from_=period.start,
        to=period.end,
        timezone=period.timezone,
        generated_at=now,
        by_day=by_day(period, facts),
        by_driver=by_driver(period, facts),
        by_zone=by_zone(facts),
        routes=route_kpis(period.routes),
        **overall.model_dump(),
    )


def kpi_report(
    session: Session,
    merchant_id: str,
    start: date | None,
    end: date | None,
    now: datetime,
) -> KpiReport:
    """The merchant's KPIs from ``start`` to ``end`` (local dates, both included; see
    :func:`resolve_range` for the defaults), read from its own event log."""
    merchant = session.get(Merchant, merchant_id)
    if merchant is None:
        raise NotFound("no such merchant")
    first, last = resolve_range(start, end, now, merchant.timezone)
    period = load_period(session, merchant_id, merchant.timezone, first, last)
    return report_of(period, now)
