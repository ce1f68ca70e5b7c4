"""What the fleet pages show, read through the dispatch domain's verbs and shaped for their
templates: the merchant's drivers, vehicles and depots (active first, by name), a day's shifts
with the names of who, what and where, the choices of the shift form and a week of opening
hours in a line.

No SQL here: every read is a ``resources.list_*``/``access_*`` verb, scoped to the merchant.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from doorstep.domain.dispatch import resources
from doorstep.domain.dispatch.models import Depot, Driver, Shift, Vehicle
from doorstep.domain.dispatch.schemas import DAYS
from doorstep.web.pages.fleet_forms import DASH, format_ranges, number_text

__all__ = [
    "PROFILE_LABELS",
    "Choice",
    "Fleet",
    "ShiftRow",
    "day_links",
    "hours_summary",
    "load_fleet",
    "shift_choices",
    "shift_rows",
    "vehicle_summary",
]

T = TypeVar("T", Depot, Vehicle, Driver, Shift)
PAGE = 500

PROFILE_LABELS: dict[str, str] = {"van": "Van", "cargo_bike": "Cargo bike", "walking": "Walking"}
SHORT_DAYS: dict[str, str] = dict(
    zip(DAYS, ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"), strict=True)
)


def _everything(
    lister: Callable[..., tuple[list[T], str | None]], session: Session, merchant_id: str
) -> list[T]:
    """Every page of a ``resources.list_*`` verb."""
    rows: list[T] = []
    after: str | None = None
    while True:
        batch, after = lister(session, merchant_id, after=after, limit=PAGE)
        rows.extend(batch)
        if after is None:
            return rows


def _by_name(rows: list[Any]) -> list[Any]:
    """Active ones first, then by name."""
    return sorted(rows, key=lambda r: (not getattr(r, "active", True), r.name.casefold(), r.id))


@dataclass(frozen=True)
class Fleet:
    """The merchant's drivers, vehicles and depots."""

    drivers: list[Driver]
    vehicles: list[Vehicle]
    depots: list[Depot]

    def driver_name(self, driver_id: str) -> str:
        """A driver's name (the id if unknown)."""
        return next((d.name for d in self.drivers if d.id == driver_id), driver_id)

    def vehicle_name(self, vehicle_id: str) -> str:
        """A vehicle's name (the id if unknown)."""
        return next((v.name for v in self.vehicles if v.id == vehicle_id), vehicle_id)

    def depot_name(self, depot_id: str) -> str:
        """A depot's name (the id if unknown)."""
        return next((d.name for d in self.depots if d.id == depot_id), depot_id)


def load_fleet(session: Session, merchant_id: str) -> Fleet:
    """The merchant's drivers, vehicles (active first, by name) and depots (by name)."""
    return Fleet(
        drivers=_by_name(_everything(resources.list_drivers, session, merchant_id)),
        vehicles=_by_name(_everything(resources.list_vehicles, session, merchant_id)),
        depots=_by_name(_everything(resources.list_depots, session, merchant_id)),
    )


def vehicle_summary(vehicle: Vehicle) -> str:
    """``Van · 800 kg · 60 parcels``."""
    profile = PROFILE_LABELS.get(vehicle.profile, vehicle.profile)
    weight = number_text(vehicle.capacity_weight_kg)
    return f"{profile} · {weight} kg · {vehicle.capacity_parcels} parcels"


def hours_summary(hours: dict[str, list[list[str]]] | None) -> list[str]:
    """A week of opening hours in short lines, neighbouring days with the same hours joined:
    ``["Mon-Fri 08:00-18:00", "Sat 09:00-12:00"]``; closed days are left out."""
    hours = hours or {}
    lines: list[str] = []
    run: list[str] = []
    for day in (*DAYS, None):
        if run and (day is None or hours.get(day) != hours.get(run[0])):
            first, last = SHORT_DAYS[run[0]], SHORT_DAYS[run[-1]]
            days = first if len(run) == 1 else f"{first}{DASH}{last}"
            if len(run) == 2:
                days = f"{first}, {last}"
            lines.append(f"{days} {format_ranges(hours[run[0]])}")
            run = []
        if day is not None and hours.get(day):
            run.append(day)
    return lines


@dataclass(frozen=True)
class ShiftRow:
    """A shift as the day's table shows it, times in the merchant's timezone."""

    shift: Shift
    driver: str
    vehicle: str
    depot: str
    start: datetime
    end: datetime
    tz: ZoneInfo

    @property
    def ends_next_day(self) -> bool:
        """Whether the shift ends on a later day than it starts (local time)."""
        return self.end.date() > self.start.date()

    @property
    def hours(self) -> str:
        """``08:00-16:30`` in local time."""
        return f"{self.start:%H:%M}{DASH}{self.end:%H:%M}"

    @property
    def break_minutes(self) -> int | None:
        """The break's length in minutes (None without a break)."""
        s = self.shift
        if s.break_earliest_at and s.break_latest_at and s.break_duration_s:
            return s.break_duration_s // 60
        return None

    @property
    def break_window(self) -> str:
        """When the break may start: ``12:00-13:30``."""
        s = self.shift
        if not (s.break_earliest_at and s.break_latest_at):
            return ""
        earliest = s.break_earliest_at.astimezone(self.tz)
        latest = s.break_latest_at.astimezone(self.tz)
        return f"{earliest:%H:%M}{DASH}{latest:%H:%M}"


def shift_rows(session: Session, merchant_id: str, fleet: Fleet, day: date) -> list[ShiftRow]:
    """The shifts starting on ``day`` (merchant's timezone), by start then driver."""
    tz = resources.merchant_tz(session, merchant_id)
    shifts: list[Shift] = []
    after: str | None = None
    while True:
        batch, after = resources.list_shifts(session, merchant_id, day=day, after=after, limit=PAGE)
        shifts.extend(batch)
        if after is None:
            break
    rows = [
        ShiftRow(
            shift=s,
            driver=fleet.driver_name(s.driver_id),
            vehicle=fleet.vehicle_name(s.vehicle_id),
            depot=fleet.depot_name(s.depot_id),
            start=s.start_at.astimezone(tz),
            end=s.end_at.astimezone(tz),
            tz=tz,
        )
        for s in shifts
    ]
    return sorted(rows, key=lambda r: (r.start, r.driver.casefold()))


@dataclass(frozen=True)
class Choice:
    """An option of a select: value, label, and whether it is deactivated."""

    value: str
    label: str
    inactive: bool = False


def shift_choices(fleet: Fleet, keep: dict[str, str] | None = None) -> dict[str, list[Choice]]:
    """The options of the shift form: active drivers and vehicles (plus a deactivated one
    the shift being edited still names, marked so) and every depot."""
    keep = keep or {}
    drivers = [
        Choice(d.id, d.name + ("" if d.active else " (deactivated)"), not d.active)
        for d in fleet.drivers
        if d.active or d.id == keep.get("driver_id")
    ]
    vehicles = [
        Choice(
            v.id,
            f"{v.name} · {vehicle_summary(v)}" + ("" if v.active else " (deactivated)"),
            not v.active,
        )
        for v in fleet.vehicles
        if v.active or v.id == keep.get("vehicle_id")
    ]
    depots = [Choice(d.id, f"{d.name} · {d.city}") for d in fleet.depots]
    return {"driver_id": drivers, "vehicle_id": vehicles, "depot_id": depots}


def day_links(day: date) -> tuple[date, date]:
    """The days before and after ``day``."""
    return day - timedelta(days=1), day + timedelta(days=1)
