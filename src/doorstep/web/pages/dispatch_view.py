"""What the dispatcher's page shows, read and shaped for its template: the route colours,
number and time formats, the route cards, the shifts a plan could not use, the depot's day
(:func:`load_dispatch_day`) and the plan's GeoJSON for the map (:func:`plan_geojson`).

Everything here reads through the dispatch domain's functions (no SQL of its own) and is
used by the handlers in :mod:`doorstep.web.pages.dispatch`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from doorstep.clock import Clock
from doorstep.domain.dispatch import resources, views
from doorstep.domain.dispatch.exports import RouteSheet, load_plan_sheets, to_geojson
from doorstep.domain.dispatch.models import Depot
from doorstep.domain.dispatch.plan_schemas import (
    PlanOut,
    PlanSummaryOut,
    RouteOut,
    plan_out,
    plan_summary_out,
)
from doorstep.domain.errors import NotFound
from doorstep.domain.tracking.watch import latest_positions, watch_stops
from doorstep.web.pages.auth import ConsoleUser
from doorstep.web.pages.dispatch_marks import (
    UnassignedGroup,
    status_mark,
    unassigned_features,
    unassigned_groups,
)

__all__ = [
    "DASH",
    "PALETTE",
    "AttentionItem",
    "DispatchDay",
    "Fmt",
    "PlanPanel",
    "RouteCard",
    "RouteColour",
    "SkippedShift",
    "attention_for",
    "ink_for",
    "load_dispatch_day",
    "map_collection",
    "plan_geojson",
    "route_colour",
    "today_for",
    "vehicle_features",
]

# Route colours: Okabe & Ito's and Paul Tol's colour-blind-safe sets, ordered so neighbours
# differ in lightness as well as hue. Cycled by the route's position in its plan; the same
# index names the ``route-cN`` class in ``static/dispatch.css`` (a test keeps them in step).
PALETTE: tuple[str, ...] = (
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#117733",  # green
    "#AA4499",  # purple
    "#E69F00",  # orange
    "#332288",  # indigo
    "#44AA99",  # teal
    "#882255",  # wine
    "#88CCEE",  # sky
    "#999933",  # olive
    "#CC6677",  # rose
    "#DDCC77",  # sand
)

UNASSIGNED_LABELS: dict[str, str] = {
    "outside_every_shift": "Window outside every shift",
    "over_capacity": "Too big for every vehicle",
    "window_impossible": "Window cannot be reached",
    "needs_missing_skill": "Needs a skill nobody has",
    "unreachable": "Address cannot be reached",
    "no_vehicle_time_left": "No vehicle time left",
    "no_vehicle_at_depot": "Every vehicle that could take it has left",
    "needs_location": "Address not placed on the map yet",
    "outside_coverage": "Outside the road map",
}
# Why a plan could not use a shift (``stats["skipped_shifts"]``, see
# :func:`~doorstep.domain.dispatch.inputs.unusable`), when it gives no sentence.
SKIPPED_LABELS: dict[str, str] = {
    "depot_closed": "Depot closed",
    "dropped": "Dropped from the plan",
    "over": "Shift already over",
    "driver_deactivated": "Driver deactivated",
    "vehicle_deactivated": "Vehicle deactivated",
}
DASH = "\u2013"  # an en dash, for ranges and missing values
PROVIDER_LABELS = {"straight": "Straight line", "osm": "OSM road network", "osrm": "OSRM"}


@dataclass(frozen=True)
class RouteColour:
    """A route's colour: its palette ``index`` (the CSS class), the ``hex`` value and the
    ``ink`` (black or white) that reads best on it."""

    index: int
    hex: str
    ink: str


def _luminance(hex_colour: str) -> float:
    """WCAG relative luminance of ``#RRGGBB``."""
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def ink_for(hex_colour: str) -> str:
    """Black or white, whichever contrasts more with ``hex_colour``."""
    lum = _luminance(hex_colour)
    return "#000000" if (lum + 0.05) / 0.05 >= 1.05 / (lum + 0.05) else "#ffffff"


def route_colour(position: int) -> RouteColour:
    """The colour of the route at ``position`` (0-based) in its plan, cycling the palette."""
    index = position % len(PALETTE)
    return RouteColour(index, PALETTE[index], ink_for(PALETTE[index]))


# --- Formatting for the templates -----------------------------------------------------------


class Fmt:
    """Number and time formats the page uses (passed to the template as ``fmt``)."""

    @staticmethod
    def km(metres: float) -> str:
        return f"{metres / 1000:.1f} km"

    @staticmethod
    def hm(seconds: float) -> str:
        minutes = round(seconds / 60)
        return f"{minutes // 60}:{minutes % 60:02d}"

    @staticmethod
    def clock(value: datetime | None) -> str:
        return value.strftime("%H:%M") if value is not None else DASH

    @staticmethod
    def num(value: float) -> str:
        return f"{value:.1f}".removesuffix(".0")

    @staticmethod
    def seconds(value: Any) -> str:
        return f"{float(value):.2f} s" if isinstance(value, int | float) else DASH

    @staticmethod
    def limit(value: float) -> str:
        return f"{value:g} s"

    @staticmethod
    def day(value: date) -> str:
        return f"{value:%A} {value.day} {value:%B %Y}"

    @staticmethod
    def provider(name: str) -> str:
        return PROVIDER_LABELS.get(name, name or DASH)

    @staticmethod
    def reason(code: str) -> str:
        return UNASSIGNED_LABELS.get(code, code.replace("_", " ").capitalize())


# --- What the page shows --------------------------------------------------------------------


@dataclass(frozen=True)
class RouteCard:
    """One route as its card shows it: the route, its number and colour, and the capacity of
    its vehicle (the load is shown against it)."""

    route: RouteOut
    number: int
    colour: RouteColour
    capacity_weight_kg: float
    capacity_parcels: int
    late: dict[str, str] = field(default_factory=dict)  # order id -> violation text

    @property
    def overloaded(self) -> bool:
        totals = self.route.totals
        return (
            totals.load_weight_kg > self.capacity_weight_kg
            or totals.load_parcels > self.capacity_parcels
        )


@dataclass(frozen=True)
class SkippedShift:
    """A shift the plan could not use, as its line shows it: who and when (``driver`` is
    None when the shift no longer exists; then only its id is known) and the ``reason`` in
    plain words: planning's sentence when it gave one, else a label for its reason code."""

    shift_id: str
    driver: str | None
    vehicle: str | None
    hours: str
    reason: str


def _as_sentence(text: str) -> str:
    text = text.strip()
    if text and text[-1] not in ".!?":
        text += "."
    return text[:1].upper() + text[1:]


def _skipped_shift(note: dict[str, Any], view: views.PlanView) -> SkippedShift:
    code = str(note.get("reason") or "")
    detail = str(note.get("detail") or "").strip()
    label = SKIPPED_LABELS.get(code, code.replace("_", " ").capitalize() or "Not used")
    shift = view.shifts.get(note["shift_id"])
    if shift is None:
        return SkippedShift(note["shift_id"], None, None, "", _as_sentence(detail or label))
    driver = view.drivers.get(shift.driver_id)
    vehicle = view.vehicles.get(shift.vehicle_id)
    name = driver.name if driver is not None else shift.driver_id
    start, end = (t.astimezone(view.tz).strftime("%H:%M") for t in (shift.start_at, shift.end_at))
    # Planning's sentence may begin by naming the shift ("Shift of Ada 06:00-07:30: the
    # depot is ..."), which the line already does: keep only what follows.
    detail = detail.removeprefix(f"Shift of {name} {start}-{end}: ")
    return SkippedShift(
        shift_id=shift.id,
        driver=name,
        vehicle=vehicle.name if vehicle is not None else None,
        hours=f"{start}{DASH}{end}",
        reason=_as_sentence(detail or label),
    )


@dataclass(frozen=True)
class PlanPanel:
    """The plan on show, with its route cards and the shifts it could not use."""

    plan: PlanOut
    cards: list[RouteCard]
    skipped: list[SkippedShift] = field(default_factory=list)
    groups: list[UnassignedGroup] = field(default_factory=list)  # left out, by reason

    @property
    def editable(self) -> bool:
        return self.plan.status in ("draft", "published")

    @property
    def violations(self) -> int:
        return sum(len(c.route.violations) for c in self.cards)


def _panel(view: views.PlanView) -> PlanPanel:
    out = plan_out(view)
    cards = []
    for route in out.routes:
        vehicle = view.vehicles[route.vehicle.id]
        stop_problems: dict[str, str] = {}
        for violation in route.violations:
            if "order_id" in violation:
                text = str(violation.get("detail", violation.get("type", "")))
                known = stop_problems.get(violation["order_id"])
                stop_problems[violation["order_id"]] = f"{known}; {text}" if known else text
        cards.append(
            RouteCard(
                route=route,
                number=route.position + 1,
                colour=route_colour(route.position),
                capacity_weight_kg=vehicle.capacity_weight_kg,
                capacity_parcels=vehicle.capacity_parcels,
                late=stop_problems,
            )
        )
    skipped = [_skipped_shift(note, view) for note in views.skipped_shifts(view.plan)]
    return PlanPanel(out, cards, skipped, unassigned_groups(view))


@dataclass
class DispatchDay:
    """Everything the page shows for one depot and day."""

    depots: list[Depot]
    depot: Depot | None
    day: date
    plans: list[PlanSummaryOut]
    shown: PlanPanel | None
    problems: list[str]


def _all_depots(session: Session, merchant_id: str) -> list[Depot]:
    depots: list[Depot] = []
    cursor: str | None = None
    while True:
        rows, cursor = resources.list_depots(session, merchant_id, after=cursor, limit=500)
        depots.extend(rows)
        if cursor is None:
            return depots


def today_for(clock: Clock, timezone: str) -> date:
    """Today's date in ``timezone`` by ``clock``."""
    return clock.now().astimezone(ZoneInfo(timezone)).date()


def load_dispatch_day(
    session: Session,
    clock: Clock,
    me: ConsoleUser,
    *,
    depot_id: str | None,
    day_text: str | None,
    plan_id: str | None,
) -> DispatchDay:
    """Read what the page shows: the depots, the chosen depot and day (defaults: the first
    depot, today in the merchant's timezone), the day's plans and the one to show (the
    requested one, else the published one, else the newest)."""
    problems: list[str] = []
    merchant_id = me.merchant.id
    depots = _all_depots(session, merchant_id)
    day = today_for(clock, me.merchant.timezone)
    if day_text:
        try:
            day = date.fromisoformat(day_text)
        except ValueError:
            problems.append(f"“{day_text}” is not a date (YYYY-MM-DD); showing today.")
    requested = None
    if plan_id:
        try:
            requested = views.load_plan_view(session, merchant_id, plan_id)
        except NotFound:
            problems.append("That plan does not exist; showing the day's plan instead.")
        else:
            depot_id, day = requested.plan.depot_id, requested.plan.date
    depot = next((d for d in depots if d.id == depot_id), None)
    if depot_id and depot is None:
        problems.append("That depot does not exist; showing the first one.")
    depot = depot or (depots[0] if depots else None)
    if depot is None:
        return DispatchDay(depots, None, day, [], None, problems)
    day_views = views.list_plans(session, merchant_id, day=day, depot_id=depot.id, limit=50)
    shown = requested or next(
        (v for v in day_views if v.plan.status == "published"),
        next(iter(day_views), None),
    )
    return DispatchDay(
        depots=depots,
        depot=depot,
        day=day,
        plans=[plan_summary_out(v) for v in day_views],
        shown=_panel(shown) if shown is not None else None,
        problems=problems,
    )


# --- Map data -------------------------------------------------------------------------------


def _hhmm(value: datetime | None, tz: ZoneInfo) -> str:
    return value.astimezone(tz).strftime("%H:%M") if value is not None else ""


def plan_geojson(
    sheets: list[RouteSheet],
    problems: dict[str, str] | None = None,
    attention: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The plan's FeatureCollection (:func:`to_geojson`) with what the map draws added: each
    route's number, colour and ink; each stop's colour, driver, recipient's first name, and
    window and planned arrival as local ``HH:MM``; the status mark (``status_key``,
    ``status_label``, ``status_glyph``) of a stop out for delivery, delayed, delivered or
    failed; what the stop breaks (``problem``, from ``problems`` by order id) and whether it is
    late or at risk now (``attention``)."""
    problems = problems or {}
    attention = attention or {}
    collection = to_geojson(sheets)
    by_route = {s.route_id: s for s in sheets}
    for feature in collection["features"]:
        props = feature["properties"]
        if props["kind"] not in ("route", "stop"):
            continue
        sheet = by_route[props["route_id"]]
        colour = route_colour(sheet.position)
        props.update(number=sheet.position + 1, colour=colour.hex, ink=colour.ink)
        if props["kind"] == "stop":
            tz = ZoneInfo(sheet.timezone)
            stop = next(s for s in sheet.stops if s.order_id == props["order_id"])
            window = ""
            if stop.window_start is not None and stop.window_end is not None:
                window = f"{_hhmm(stop.window_start, tz)}{DASH}{_hhmm(stop.window_end, tz)}"
            props.update(
                driver=sheet.driver_name,
                recipient=(stop.recipient_name.split() or [""])[0],
                window=window,
                arrival=_hhmm(stop.planned_arrival, tz),
                problem=problems.get(stop.order_id, ""),
                attention=attention.get(stop.order_id, ""),
            )
            mark = status_mark(stop.status)
            if mark is not None:
                props.update(status_key=mark.key, status_label=mark.label, status_glyph=mark.glyph)
    return collection


def map_collection(
    session: Session, clock: Clock, merchant_id: str, timezone: str, plan_id: str
) -> dict[str, Any]:
    """Everything the dispatch map draws for a plan of this merchant (404 otherwise): the
    depot, routes and stops (:func:`plan_geojson`, with each stop's violations and live
    attention), the orders the plan left out (``kind: unassigned``) and the vehicles."""
    panel = _panel(views.load_plan_view(session, merchant_id, plan_id))
    sheets = load_plan_sheets(session, merchant_id, plan_id)
    problems = {order_id: text for card in panel.cards for order_id, text in card.late.items()}
    attention = {
        item.order_id: item.attention
        for item in attention_for(session, clock, panel, merchant_id, timezone)
    }
    collection = plan_geojson(sheets, problems, attention)
    collection["features"].extend(unassigned_features(panel.groups, UNASSIGNED_LABELS))
    collection["features"].extend(vehicle_features(session, merchant_id, sheets))
    return collection


# --- Live: stops needing attention and vehicles --------------------------------------------


@dataclass(frozen=True)
class AttentionItem:
    """A stop that is late or at risk, as the "Needs attention" list shows it."""

    order_id: str
    reference: str
    attention: str  # late | at_risk
    route_number: int
    driver: str
    window_end: str
    expected: str


def attention_for(
    session: Session, clock: Clock, panel: PlanPanel | None, merchant_id: str, timezone: str
) -> list[AttentionItem]:
    """The shown plan's late stops, then its at-risk ones (see
    :func:`~doorstep.domain.tracking.watch.watch_stops`)."""
    if panel is None:
        return []
    where = {stop.order_id: card for card in panel.cards for stop in card.route.stops}
    tz = ZoneInfo(timezone)
    items = []
    for w in watch_stops(session, merchant_id, where, clock.now()):
        if not w.attention:
            continue
        card = where[w.order_id]
        items.append(
            AttentionItem(
                order_id=w.order_id,
                reference=w.reference,
                attention=w.attention,
                route_number=card.number,
                driver=card.route.driver.name,
                window_end=_hhmm(w.window_end, tz),
                expected=_hhmm(w.expected, tz),
            )
        )
    return items


def vehicle_features(
    session: Session, merchant_id: str, sheets: list[RouteSheet]
) -> list[dict[str, Any]]:
    """GeoJSON points for the routes' latest vehicle positions (``kind: vehicle``)."""
    by_route = {s.route_id: s for s in sheets}
    features = []
    for p in latest_positions(session, merchant_id, by_route):
        sheet = by_route[p.route_id]
        colour = route_colour(sheet.position)
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [p.lon, p.lat]},
                "properties": {
                    "kind": "vehicle",
                    "route_id": p.route_id,
                    "number": sheet.position + 1,
                    "colour": colour.hex,
                    "driver": sheet.driver_name,
                    "heading": p.heading,
                    "recorded_at": p.recorded_at.isoformat(),
                },
            }
        )
    return features
