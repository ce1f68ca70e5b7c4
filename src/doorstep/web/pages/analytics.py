"""The console's Analytics page: the merchant's KPIs by day, driver and zone with their charts
(inline SVG drawn on the server), for a period picked with two date fields. The same query
as ``GET /v1/analytics/kpis`` and the same sections as the HTML report."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from doorstep.domain.accounts.users import Action
from doorstep.domain.analytics import kpi_report
from doorstep.domain.analytics.report import kpi_sections
from doorstep.domain.errors import DomainError
from doorstep.web.deps import ClockDep
from doorstep.web.pages.auth import ConsoleUser
from doorstep.web.pages.calls import console_page
from doorstep.web.pages.console import render_console

router = APIRouter(prefix="/console", include_in_schema=False)


def _date(value: str | None) -> date | None:
    """A ``YYYY-MM-DD`` query value, None when empty; ValueError when malformed."""
    return date.fromisoformat(value) if value else None


@router.get("/analytics", name="console_analytics")
@console_page(Action.ANALYTICS_READ)
def analytics_page(
    request: Request,
    me: ConsoleUser,
    session: Session,
    clock: ClockDep,
) -> Response:
    """KPIs of ``from``..``to`` (default: the last 7 days); a wrong period is named and the
    default shown instead, with a 422."""
    raw_from = request.query_params.get("from", "")[:20]
    raw_to = request.query_params.get("to", "")[:20]
    error = None
    try:
        report = kpi_report(session, me.merchant.id, _date(raw_from), _date(raw_to), clock.now())
    except (ValueError, DomainError) as exc:
        error = exc.detail if isinstance(exc, DomainError) else "Dates are written YYYY-MM-DD."
        report = kpi_report(session, me.merchant.id, None, None, clock.now())
    return render_console(
        request,
        me,
        "console/analytics.html",
        {
            "report": report,
            "sections": kpi_sections(report),
            "error": error,
            "values": {
                "from": raw_from or report.from_.isoformat(),
                "to": raw_to or report.to.isoformat(),
            },
        },
        status_code=422 if error else 200,
    )
