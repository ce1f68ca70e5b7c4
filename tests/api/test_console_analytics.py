"""The console's Analytics page and the self-contained HTML report: the KPIs by day, driver
and zone with inline SVG charts, nothing fetched from another host, only for allowed roles."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from doorstep.db.engine import transaction
from doorstep.domain.accounts.models import Role
from doorstep.domain.analytics import kpi_report, render_report
from doorstep.runtime import Runtime
from tests.analytics_scene import DAY, build_day
from tests.conftest import MerchantCtx
from tests.console_session import client, make_user, sign_in

__all__ = ["client"]  # the fixture, imported for pytest

EXTERNAL = re.compile(r"(https?:)?//[a-z0-9.-]+", re.IGNORECASE)


def _external_urls(page: str) -> list[str]:
    """Every absolute or protocol-relative URL in the page (none should be there)."""
    return [m.group(0) for m in EXTERNAL.finditer(page)]


def test_support_reads_the_kpis_by_day_driver_and_zone(
    client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """A support agent sees the day's on-time rate, the zones and drivers, and SVG charts, with
    no script, style attribute or URL of another host in the page."""
    build_day(runtime, merchant.id)
    make_user(runtime, merchant.id, "sam@example.com", Role.SUPPORT)
    sign_in(client, "sam@example.com")
    home = client.get("/console")
    assert 'href="/console/analytics"' in home.text
    page = client.get("/console/analytics", params={"from": "2026-11-25", "to": "2026-11-25"})
    assert page.status_code == 200, page.text
    text = page.text
    assert "<h1>Analytics</h1>" in text
    assert "33.3 %" in text  # on time: 1 of 3 delivered
    assert "66.7 %" in text  # first attempt: 2 of 3
    for label in ("Monaco", "No zone", "Ann", "Bea", "KPIs by day", "KPIs by driver"):
        assert label in text
    assert text.count("<svg") >= 10
    assert '<title id="chart-on-time-by-zone-t">On-time rate by zone</title>' in text
    assert " style=" not in text and "<style" not in text  # the CSP forbids inline styles
    assert "<script" not in text
    assert _external_urls(text) == []


def test_a_wrong_period_is_named_and_drivers_may_not_look(
    client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """A period ending before it starts is a 422 that says so and shows the last 7 days; a
    driver gets 403."""
    make_user(runtime, merchant.id, "dora@example.com", Role.DISPATCHER)
    make_user(runtime, merchant.id, "dan@example.com", Role.DRIVER)
    sign_in(client, "dora@example.com")
    wrong = client.get("/console/analytics", params={"from": "2026-11-25", "to": "2026-11-01"})
    assert wrong.status_code == 422
    assert "the period ends before it starts" in wrong.text
    assert "from 2026-11-19 to 2026-11-25" in wrong.text
    malformed = client.get("/console/analytics", params={"from": "yesterday"})
    assert malformed.status_code == 422 and "YYYY-MM-DD" in malformed.text
    client.post("/console/logout", data={"csrf_token": ""})
    client.cookies.clear()
    sign_in(client, "dan@example.com")
    assert client.get("/console/analytics").status_code == 403


def test_the_report_is_one_self_contained_html_file(
    runtime: Runtime, merchant: MerchantCtx
) -> None:
    """The report carries its CSS and SVG charts inline, loads nothing (no script, link, image
    or URL of another host) and shows the day's figures and targets; an empty period renders."""
    build_day(runtime, merchant.id)
    with transaction(runtime.sessions) as s:
        report = kpi_report(s, merchant.id, DAY, DAY, runtime.clock.now())
        empty = kpi_report(s, merchant.id, DAY.replace(year=2025), None, runtime.clock.now())
    html = render_report(report, title="Seeded day")
    assert html.startswith("<!doctype html>")
    assert "<title>Seeded day, 2026-11-25 to 2026-11-25</title>" in html
    assert "<style>" in html and html.count("<svg") >= 10
    for loader in ("<script", "<link", "<img", "@import", "url("):
        assert loader not in html
    assert _external_urls(html) == []
    assert "33.3 %" in html and "Target ≥ 95 %: missed" in html
    assert "Target 0: missed" in html  # one duplicate message
    assert "Ann" in html and "21.5 km" in html
    blank = render_report(empty)
    assert "No data" in blank and "Nothing in this period." in blank
