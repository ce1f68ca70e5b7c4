"""``GET /v1/analytics/kpis``: the calling merchant's KPIs from its own event log (ADR 0018)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from sqlalchemy.orm import Session

from doorstep.domain.analytics import KpiReport, kpi_report
from doorstep.web.calls import ApiCallDep, Caller, json_response
from doorstep.web.problems import PROBLEM_JSON

router = APIRouter(prefix="/v1", tags=["analytics"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid API key", "content": {PROBLEM_JSON: {}}},
    422: {
        "description": "A date is not YYYY-MM-DD, `to` is before `from`, or the period is "
        "longer than 92 days",
        "content": {PROBLEM_JSON: {}},
    },
}


@router.get(
    "/analytics/kpis",
    response_model=KpiReport,
    responses=_ERRORS,
    summary="Delivery KPIs by day, driver and zone",
    description=(
        "On-time and first-attempt rates, ETA error (median and p90 at route start, 5 stops "
        "and 1 stop away) and the shown window's coverage, late deliveries warned, messages "
        "per delivery and duplicates, self-service changes, and distance and driving time per "
        "route; for the orders whose promised window falls on `from`..`to` (local dates in "
        "your timezone, both included; by default the last 7 days up to today). Rates are "
        "shares in [0, 1], null when there is nothing to divide."
    ),
)
async def get_kpis(
    api: ApiCallDep,
    start: Annotated[date | None, Query(alias="from", description="First day, YYYY-MM-DD")] = None,
    end: Annotated[date | None, Query(alias="to", description="Last day, YYYY-MM-DD")] = None,
) -> Response:
    def work(session: Session, caller: Caller) -> Response:
        report = kpi_report(session, caller.merchant_id, start, end, caller.clock.now())
        return json_response(report)

    return await api.read(work)
