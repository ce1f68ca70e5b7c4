"""Doorstep's own KPIs, computed from its event log (ADR 0018): on-time and first-attempt
rates, ETA accuracy, delay warnings, messages per delivery and duplicates, self-service
changes, and distance and driving time per route; by day, driver and zone.

:func:`kpi_report` reads a merchant's period and answers a :class:`KpiReport`;
:func:`render_report` writes it as a self-contained HTML page (inline CSS and SVG)."""

from doorstep.domain.analytics.report import render_report
from doorstep.domain.analytics.schemas import KpiReport
from doorstep.domain.analytics.service import kpi_report, resolve_range

__all__ = ["KpiReport", "kpi_report", "render_report", "resolve_range"]
