"""The KPIs as HTML: :func:`kpi_sections`, the body the console page shows, and
:func:`render_report`, the same body in a self-contained page (inline CSS and SVG charts, no
script and no asset from another host) for ``doorstep simulate --report``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from doorstep.domain.analytics.charts import COLOURS, bar_chart, fmt
from doorstep.domain.analytics.schemas import HORIZONS, Group, KpiReport

HORIZON_LABELS = {
    "route_start": "At route start",
    "5_stops": "5 stops away",
    "1_stop": "1 stop away",
}
SELF_SERVICE_LABELS = {
    "rescheduled": "Rescheduled",
    "redirected": "Redirected",
    "held": "Held",
    "instructions_changed": "Instructions changed",
}

_env = Environment(
    loader=PackageLoader("doorstep.domain.analytics", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["fmt"] = fmt


@dataclass(frozen=True)
class Headline:
    """One headline figure and, when the issue sets one, its target and whether it is met."""

    label: str
    value: str
    target: str | None = None
    met: bool | None = None


def _at_least(value: float | None, target: float) -> bool | None:
    return None if value is None else value >= target


def headlines(r: KpiReport) -> list[Headline]:
    """The figures a day is judged by, with the targets of issue 17."""
    eta = r.eta_abs_error_min["1_stop"]
    return [
        Headline("Orders", str(r.orders)),
        Headline("Delivered", str(r.delivered)),
        Headline("On time", fmt(r.on_time_rate, "%"), "≥ 95 %", _at_least(r.on_time_rate, 0.95)),
        Headline(
            "First attempt",
            fmt(r.first_attempt_rate, "%"),
            "≥ 92 %",
            _at_least(r.first_attempt_rate, 0.92),
        ),
        Headline(
            "Late deliveries warned",
            fmt(r.late_warned_share, "%") + f" of {r.late}",
            "≥ 90 %",
            _at_least(r.late_warned_share, 0.90),
        ),
        Headline(
            "Messages per delivery",
            fmt(r.messages_per_delivery, ""),
            "≤ 4",
            None if r.messages_per_delivery is None else r.messages_per_delivery <= 4,
        ),
        Headline("Duplicate messages", str(r.duplicate_messages), "0", r.duplicate_messages == 0),
        Headline("ETA error 1 stop away (median)", fmt(eta.median, "min")),
    ]


def _rates(chart_id: str, title: str, groups: list[Group], attr: str, colour: str) -> Markup:
    bars = [(g.label, getattr(g, attr)) for g in groups]
    return bar_chart(chart_id, title, bars, unit="%", colour=colour)


def charts(r: KpiReport) -> dict[str, Markup]:
    """Every chart of the page, by name."""
    horizons = [HORIZON_LABELS[h] for h in HORIZONS]
    return {
        "on_time_by_day": _rates(
            "chart-on-time-by-day", "On-time rate by day", r.by_day, "on_time_rate", COLOURS[0]
        ),
        "first_by_day": _rates(
            "chart-first-by-day",
            "First-attempt rate by day",
            r.by_day,
            "first_attempt_rate",
            COLOURS[1],
        ),
        "on_time_by_driver": _rates(
            "chart-on-time-by-driver",
            "On-time rate by driver",
            r.by_driver,
            "on_time_rate",
            COLOURS[0],
        ),
        "first_by_driver": _rates(
            "chart-first-by-driver",
            "First-attempt rate by driver",
            r.by_driver,
            "first_attempt_rate",
            COLOURS[1],
        ),
        "on_time_by_zone": _rates(
            "chart-on-time-by-zone", "On-time rate by zone", r.by_zone, "on_time_rate", COLOURS[0]
        ),
        "first_by_zone": _rates(
            "chart-first-by-zone",
            "First-attempt rate by zone",
            r.by_zone,
            "first_attempt_rate",
            COLOURS[1],
        ),
        "eta_median": bar_chart(
            "chart-eta-median",
            "Median ETA error (minutes)",
            list(zip(horizons, [r.eta_abs_error_min[h].median for h in HORIZONS], strict=True)),
            unit="min",
            colour=COLOURS[2],
        ),
        "eta_p90": bar_chart(
            "chart-eta-p90",
            "90th percentile ETA error (minutes)",
            list(zip(horizons, [r.eta_abs_error_min[h].p90 for h in HORIZONS], strict=True)),
            unit="min",
            colour=COLOURS[2],
        ),
        "eta_coverage": bar_chart(
            "chart-eta-coverage",
            "Arrivals inside the shown window",
            list(zip(horizons, [r.eta_window_coverage[h] for h in HORIZONS], strict=True)),
            unit="%",
            colour=COLOURS[2],
        ),
        "messages": bar_chart(
            "chart-messages",
            "Messages sent per delivery, by channel",
            [(c, float(v)) for c, v in r.messages_per_delivery_by_channel.items()],
            colour=COLOURS[3],
        ),
        "self_service": bar_chart(
            "chart-self-service",
            "Self-service changes",
            [(SELF_SERVICE_LABELS[k], float(v)) for k, v in r.self_service.items()],
            colour=COLOURS[3],
        ),
        "distance": bar_chart(
            "chart-distance",
            "Distance per route (km)",
            [(f"{x.driver_name} {x.day:%d %b}", x.distance_km) for x in r.routes],
            unit="km",
            colour=COLOURS[1],
        ),
    }


def _context(r: KpiReport) -> dict[str, Any]:
    return {
        "r": r,
        "headlines": headlines(r),
        "charts": charts(r),
        "horizons": HORIZONS,
        "horizon_labels": HORIZON_LABELS,
        "self_service_labels": SELF_SERVICE_LABELS,
    }


def kpi_sections(report: KpiReport) -> Markup:
    """The KPI sections (headlines, charts, tables) as an HTML fragment: no script, no style
    attribute, no external URL; the console page and the report both show it."""
    return Markup(_env.get_template("kpis.html").render(_context(report)))  # noqa: S704


def render_report(report: KpiReport, title: str = "Delivery report") -> str:
    """A whole HTML document: ``title``, the period, and :func:`kpi_sections`, with its CSS
    inline, so the file opens anywhere, offline."""
    return _env.get_template("report.html").render(title=title, body=kpi_sections(report), r=report)
