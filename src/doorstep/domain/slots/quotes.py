"""``POST /v1/slots/quote``: the windows Doorstep can keep for an address, and why each other
window is not offered.

A window is offered when the address is in a zone the calendar serves, the date is no blackout,
its cut-off and lead time have not passed, its counter has room (stops and, if set,
vehicle-minutes), and, when the depot's day already has a plan, a route can take the stop in
time (:mod:`.feasibility`); without a plan, when the day has shifts, one of them must overlap
the window. ``green`` marks windows a vehicle already passes close to.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from doorstep.domain.accounts.models import Merchant
from doorstep.domain.dispatch.inputs import default_service_s
from doorstep.domain.dispatch.models import Shift
from doorstep.domain.dispatch.opening import local_instant
from doorstep.domain.dispatch.planning import travel_provider
from doorstep.domain.slots.calendars import (
    CalendarWindow,
    cutoff_problem,
    is_blackout,
    service_level,
    windows_on,
)
from doorstep.domain.slots.config import SlotSettings, slot_settings
from doorstep.domain.slots.feasibility import (
    Candidates,
    DayPlan,
    Insertion,
    best_insertion,
    candidates,
    load_day_plan,
)
from doorstep.domain.slots.models import ServiceZone, SlotCalendar, SlotCounter
from doorstep.domain.slots.schemas import (
    Fee,
    Fill,
    ParcelIn,
    QuoteIn,
    QuoteOut,
    UnavailableOut,
    WindowOut,
)
from doorstep.domain.slots.zones import zones_containing
from doorstep.routing.travel.base import LatLon, TravelTimeProvider
from doorstep.settings import Settings

OUTSIDE_ZONE = "outside_zone"
PAST_CUTOFF = "past_cutoff"
FULL = "full"
BLACKOUT = "blackout"
UNREACHABLE = "unreachable"
MAX_HORIZON_DAYS = 120  # the longest a calendar looks ahead
MAX_QUOTE_DAYS = 31

RouteFilter = Callable[[DayPlan], frozenset[str] | None]


@dataclass
class Checker:
    """Everything a quote reads once and every window then reuses."""

    session: Session
    merchant: Merchant
    tz: ZoneInfo
    now: datetime
    config: SlotSettings
    service_s: int
    provider: TravelTimeProvider
    at: LatLon
    weight_kg: float
    parcels: int
    zones: list[ServiceZone]
    # Which routes of a plan may take the stop (None: any); a rebooking's parcel can only go
    # where it can be loaded (:func:`.live.parcel_routes`).
    routes_for: RouteFilter | None = None
    _plans: dict[tuple[str, date], tuple[DayPlan | None, Candidates | None]] = field(
        default_factory=dict
    )
    _shifts: dict[tuple[str, date], list[tuple[datetime, datetime]]] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        session: Session,
        now: datetime,
        settings: Settings,
        merchant: Merchant,
        at: LatLon,
        parcels: list[ParcelIn],
        provider: TravelTimeProvider | None = None,
        *,
        routes_for: RouteFilter | None = None,
    ) -> Checker:
        return cls(
            session=session,
            merchant=merchant,
            tz=ZoneInfo(merchant.timezone),
            now=now,
            config=slot_settings(merchant),
            service_s=default_service_s(merchant, settings),
            provider=provider or travel_provider(settings),
            at=at,
            weight_kg=sum(p.weight_kg or 0.0 for p in parcels),
            parcels=len(parcels),
            zones=zones_containing(session, merchant.id, at.lat, at.lon),
            routes_for=routes_for,
        )

    def serves(self, cal: SlotCalendar) -> bool:
        """Whether the calendar covers the address: its zone holds it, or (a depot-wide
        calendar) a zone of its depot does."""
        if cal.zone_id is not None:
            return any(z.id == cal.zone_id for z in self.zones)
        return any(z.depot_id == cal.depot_id for z in self.zones)

    def day_plan(self, depot_id: str, day: date) -> tuple[DayPlan | None, Candidates | None]:
        key = (depot_id, day)
        if key not in self._plans:
            plan = load_day_plan(self.session, self.merchant.id, depot_id, day)
            cands = None
            if plan is not None and plan.routes:
                cands = candidates(plan, self.at, self.provider, self.config.nearby_stops)
                allowed = self.routes_for(plan) if self.routes_for is not None else None
                if allowed is not None:
                    edges = [(r, a) for r, a in cands.edges if r.route_id in allowed]
                    cands = Candidates(edges, cands.times)
            self._plans[key] = (plan, cands)
        return self._plans[key]

    def shift_spans(self, depot_id: str, day: date) -> list[tuple[datetime, datetime]]:
        """When the depot's shifts of local date ``day`` run (none when none are set yet)."""
        key = (depot_id, day)
        if key not in self._shifts:
            lo = local_instant(day, "00:00", self.tz)
            hi = local_instant(day + timedelta(days=1), "00:00", self.tz)
            self._shifts[key] = [
                (start, end)
                for start, end in self.session.execute(
                    select(Shift.start_at, Shift.end_at).where(
                        Shift.merchant_id == self.merchant.id,
                        Shift.depot_id == depot_id,
                        Shift.status.in_(("planned", "active")),
                        Shift.start_at >= lo,
                        Shift.start_at < hi,
                    )
                )
            ]
        return self._shifts[key]

    def insertion(
        self, depot_id: str, day: date, start: datetime, end: datetime
    ) -> tuple[DayPlan | None, Insertion | None]:
        """The depot's plan of ``day`` and its cheapest insertion that keeps ``[start, end)``
        (None without a plan, or when no route can)."""
        plan, cands = self.day_plan(depot_id, day)
        if cands is None:
            return plan, None
        return plan, best_insertion(
            cands,
            start,
            end,
            now=self.now,
            service_s=self.service_s,
            weight_kg=self.weight_kg,
            parcels=self.parcels,
        )

    def minutes_needed(self, detour_s: int | None) -> int:
        return math.ceil((self.service_s + (detour_s or 0)) / 60)

    def evaluate(
        self, window: CalendarWindow, counter: SlotCounter | None
    ) -> WindowOut | UnavailableOut:
        """The window as offered, or why it is not."""
        cal = window.calendar

        def no(reason: str, detail: str) -> UnavailableOut:
            return UnavailableOut(
                calendar_id=cal.id,
                zone_id=cal.zone_id,
                date=window.day,
                start=window.start.astimezone(self.tz),
                end=window.end.astimezone(self.tz),
                reason=reason,
                detail=detail,
            )

        if not self.serves(cal):
            return no(OUTSIDE_ZONE, "the address is outside every zone this calendar serves")
        if is_blackout(cal, window.day):
            return no(BLACKOUT, f"no deliveries on {window.day.isoformat()}")
        problem = cutoff_problem(window, self.now, self.tz)
        if problem is not None:
            return no(PAST_CUTOFF, problem)
        taken = counter.taken if counter else 0
        minutes_taken = counter.minutes_taken if counter else 0
        if taken >= window.capacity:
            return no(FULL, f"all {window.capacity} deliveries of this window are booked")
        _, cands = self.day_plan(cal.depot_id, window.day)
        detour: int | None = None
        if cands is not None:
            _, found = self.insertion(cal.depot_id, window.day, window.start, window.end)
            if found is None:
                hhmm = f"{_hhmm(window.start, self.tz)}-{_hhmm(window.end, self.tz)}"
                return no(UNREACHABLE, f"no route of the day's plan can reach the address {hhmm}")
            detour = found.detour_s
        else:
            spans = self.shift_spans(cal.depot_id, window.day)
            if spans and not any(a < window.end and b > window.start for a, b in spans):
                hhmm = f"{_hhmm(window.start, self.tz)}-{_hhmm(window.end, self.tz)}"
                return no(UNREACHABLE, f"no driver's shift covers {hhmm} that day")
        budget = window.vehicle_minutes
        if budget is not None and minutes_taken + self.minutes_needed(detour) > budget:
            return no(FULL, f"the window's {budget} vehicle-minutes are booked")
        return WindowOut(
            calendar_id=cal.id,
            zone_id=cal.zone_id,
            depot_id=cal.depot_id,
            date=window.day,
            start=window.start.astimezone(self.tz),
            end=window.end.astimezone(self.tz),
            service_level=service_level(window.day, self.now, self.tz),
            fee=Fee(amount_cents=window.fee_cents, currency=cal.currency),
            fill=Fill(
                taken=taken,
                capacity=window.capacity,
                ratio=round(taken / window.capacity, 3) if window.capacity else 1.0,
                vehicle_minutes_taken=minutes_taken if budget is not None else None,
                vehicle_minutes=budget,
            ),
            green=detour is not None and detour <= self.config.green_detour_minutes * 60,
            detour_s=detour,
            plan_checked=cands is not None,
        )


def _hhmm(at: datetime, tz: ZoneInfo) -> str:
    return at.astimezone(tz).strftime("%H:%M")


def counters_between(
    session: Session, calendar_ids: list[str], start: datetime, end: datetime
) -> dict[tuple[str, datetime], SlotCounter]:
    rows = session.scalars(
        select(SlotCounter).where(
            SlotCounter.calendar_id.in_(calendar_ids),
            SlotCounter.window_start >= start,
            SlotCounter.window_start < end,
        )
    )
    return {(c.calendar_id, c.window_start): c for c in rows}


def quote(
    session: Session,
    now: datetime,
    settings: Settings,
    merchant: Merchant,
    data: QuoteIn,
    *,
    provider: TravelTimeProvider | None = None,
    routes_for: RouteFilter | None = None,
) -> QuoteOut:
    """The windows offered for the address over the date range, and the others with why
    (``routes_for``: which routes of a plan may take the stop, for a rebooking)."""
    at = LatLon(data.address.lat, data.address.lon)
    check = Checker.build(
        session, now, settings, merchant, at, data.parcels, provider, routes_for=routes_for
    )
    today = now.astimezone(check.tz).date()
    furthest = today + timedelta(days=MAX_HORIZON_DAYS)
    first = min(max(data.date_from or today, today), furthest)
    last = min(
        data.date_to or (first + timedelta(days=check.config.quote_days - 1)),
        first + timedelta(days=MAX_QUOTE_DAYS - 1),
        furthest,
    )
    calendars = list(
        session.scalars(
            select(SlotCalendar)
            .where(SlotCalendar.merchant_id == merchant.id, SlotCalendar.active)
            .order_by(SlotCalendar.id)
        )
    )
    if check.zones:
        calendars = [c for c in calendars if check.serves(c)]
    windows: list[CalendarWindow] = []
    day = first
    while day <= last:
        for cal in calendars:
            if day <= today + timedelta(days=cal.horizon_days):
                windows += windows_on(cal, day, check.tz)
        day += timedelta(days=1)
    offered: list[WindowOut] = []
    unavailable: list[UnavailableOut] = []
    if windows:
        lo = min(w.start for w in windows)
        hi = max(w.start for w in windows) + timedelta(seconds=1)
        counters = counters_between(session, [c.id for c in calendars], lo, hi)
        for window in sorted(windows, key=lambda w: (w.start, w.calendar.id)):
            result = check.evaluate(window, counters.get((window.calendar.id, window.start)))
            if isinstance(result, WindowOut):
                offered.append(result)
            else:
                unavailable.append(result)
    return QuoteOut(zone_ids=[z.id for z in check.zones], windows=offered, unavailable=unavailable)
