"""What the delivery-options API accepts and answers: zones, slot calendars, pickup points,
quotes and reservations. Input models refuse unknown fields; clock times are ``HH:MM`` in the
merchant's timezone; instants go out in the merchant's timezone with their offset."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from doorstep.domain.dispatch.schemas import DAYS, DepotAddressIn, _opening_hours

_HHMM = re.compile(r"^(?:[01]\d|2[0-3]):[0-5]\d$")
_HHMM_END = re.compile(r"^(?:[01]\d|2[0-3]):[0-5]\d$|^24:00$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def minutes_of(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def _cutoff(value: str | None) -> str | None:
    if value is not None and not _HHMM_END.match(value):
        raise ValueError(f"{value!r} is not a local time HH:MM")
    return value


# --- Zones ----------------------------------------------------------------------------------


class ZoneIn(_In):
    """A service zone of a depot: a GeoJSON Polygon or MultiPolygon, positions ``[lon, lat]``."""

    depot_id: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=100)
    geometry: dict[str, Any] = Field(
        description="GeoJSON Polygon or MultiPolygon (RFC 7946: [lon, lat], closed rings)"
    )
    active: bool = True


class ZonePatch(_In):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    geometry: dict[str, Any] | None = None
    active: bool | None = None


class ZoneOut(BaseModel):
    id: str
    depot_id: str
    name: str
    geometry: dict[str, Any]
    bbox: list[float]
    active: bool
    created_at: datetime
    updated_at: datetime


# --- Slot calendars -------------------------------------------------------------------------


class WindowRule(_In):
    """One window offered on some weekdays (Saturday and Sunday included when listed)."""

    days: list[str] = Field(min_length=1, max_length=7, description="mon ... sun")
    start: str = Field(description="Local HH:MM")
    end: str = Field(description="Local HH:MM (24:00 allowed)")
    capacity: int = Field(ge=0, le=10_000, description="Stops the window can take")
    vehicle_minutes: int | None = Field(
        default=None, ge=1, le=100_000, description="Optional: vehicle-minutes it can take"
    )
    fee_cents: int = Field(default=0, ge=0, le=1_000_000)

    @field_validator("days")
    @classmethod
    def _days(cls, value: list[str]) -> list[str]:
        days = [d.strip().lower() for d in value]
        for day in days:
            if day not in DAYS:
                raise ValueError(f"unknown day {day!r}; use {', '.join(DAYS)}")
        if len(set(days)) != len(days):
            raise ValueError("a day is listed twice")
        return sorted(days, key=DAYS.index)

    @model_validator(mode="after")
    def _times(self) -> WindowRule:
        if not _HHMM.match(self.start):
            raise ValueError(f"start {self.start!r} is not HH:MM")
        if not _HHMM_END.match(self.end):
            raise ValueError(f"end {self.end!r} is not HH:MM")
        if minutes_of(self.end) <= minutes_of(self.start):
            raise ValueError(f"the window {self.start}-{self.end} ends before it starts")
        return self


def _no_twin_windows(rules: list[WindowRule]) -> list[WindowRule]:
    seen: set[tuple[str, str]] = set()
    for rule in rules:
        for day in rule.days:
            if (day, rule.start) in seen:
                raise ValueError(f"two windows start at {rule.start} on {day}")
            seen.add((day, rule.start))
    return rules


def _blackouts(value: list[date] | None) -> list[date] | None:
    return sorted(set(value)) if value is not None else None


class CalendarIn(_In):
    """A slot calendar: windows per weekday, cut-offs, lead time, blackout dates."""

    depot_id: str = Field(min_length=1, max_length=32)
    zone_id: str | None = Field(
        default=None, max_length=32, description="None: every zone of the depot"
    )
    name: str = Field(default="", max_length=100)
    windows: list[WindowRule] = Field(max_length=200)
    same_day_cutoff: str | None = Field(
        default=None, description="Today's windows bookable until this local time; None: none"
    )
    next_day_cutoff: str | None = Field(
        default=None, description="Tomorrow's windows bookable until this local time today"
    )
    lead_time_minutes: int = Field(default=60, ge=0, le=14 * 24 * 60)
    horizon_days: int = Field(default=14, ge=1, le=120)
    blackout_dates: list[date] = Field(default_factory=list, max_length=1000)
    currency: str = Field(default="EUR")
    active: bool = True

    _cut = field_validator("same_day_cutoff", "next_day_cutoff")(_cutoff)
    _twins = field_validator("windows")(_no_twin_windows)
    _black = field_validator("blackout_dates")(_blackouts)

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        value = value.upper()
        if not _CURRENCY.match(value):
            raise ValueError("an ISO 4217 code such as EUR")
        return value


class CalendarPatch(_In):
    """Change a calendar; absent fields stay. Reservations already held keep their window."""

    zone_id: str | None = Field(default=None, max_length=32)
    name: str | None = Field(default=None, max_length=100)
    windows: list[WindowRule] | None = Field(default=None, max_length=200)
    same_day_cutoff: str | None = None
    next_day_cutoff: str | None = None
    lead_time_minutes: int | None = Field(default=None, ge=0, le=14 * 24 * 60)
    horizon_days: int | None = Field(default=None, ge=1, le=120)
    blackout_dates: list[date] | None = Field(default=None, max_length=1000)
    active: bool | None = None

    _cut = field_validator("same_day_cutoff", "next_day_cutoff")(_cutoff)
    _black = field_validator("blackout_dates")(_blackouts)

    @field_validator("windows")
    @classmethod
    def _twins(cls, value: list[WindowRule] | None) -> list[WindowRule] | None:
        return _no_twin_windows(value) if value is not None else None


class CalendarOut(BaseModel):
    id: str
    depot_id: str
    zone_id: str | None
    name: str
    windows: list[dict[str, Any]]
    same_day_cutoff: str | None
    next_day_cutoff: str | None
    lead_time_minutes: int
    horizon_days: int
    blackout_dates: list[str]
    currency: str
    active: bool
    created_at: datetime


# --- Pickup points --------------------------------------------------------------------------


class PickupPointAddressIn(DepotAddressIn):
    """A pickup point's address: its coordinates are required (recipients are sent there)."""

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class PickupPointIn(_In):
    """A shop or a locker where recipients can collect a redirected parcel."""

    name: str = Field(min_length=1, max_length=200)
    kind: Literal["shop", "locker"]
    address: PickupPointAddressIn
    opening_hours: dict[str, Any] | None = None
    active: bool = True

    _hours = field_validator("opening_hours")(_opening_hours)


class PickupPointPatch(_In):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    kind: Literal["shop", "locker"] | None = None
    address: PickupPointAddressIn | None = None
    opening_hours: dict[str, Any] | None = None
    active: bool | None = None

    _hours = field_validator("opening_hours")(_opening_hours)


class PickupPointOut(BaseModel):
    id: str
    name: str
    kind: str
    address: dict[str, Any]
    opening_hours: dict[str, Any]
    active: bool


# --- Quotes and reservations ----------------------------------------------------------------


class PointIn(_In):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class ParcelIn(_In):
    weight_kg: float | None = Field(default=None, ge=0, le=1000)


class QuoteIn(_In):
    """Where the parcels go and, optionally, which local dates to look at (default: the next
    ``quote_days`` days, at most 31)."""

    address: PointIn
    parcels: list[ParcelIn] = Field(default_factory=lambda: [ParcelIn()], max_length=100)
    date_from: date | None = Field(default=None, alias="from")
    date_to: date | None = Field(default=None, alias="to")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _range(self) -> QuoteIn:
        if self.date_from and self.date_to:
            if self.date_to < self.date_from:
                raise ValueError("'to' is before 'from'")
            if (self.date_to - self.date_from).days > 31:
                raise ValueError("a quote covers at most 31 days")
        return self


class Fee(BaseModel):
    amount_cents: int
    currency: str


class Fill(BaseModel):
    taken: int
    capacity: int
    ratio: float
    vehicle_minutes_taken: int | None = None
    vehicle_minutes: int | None = None


class WindowOut(BaseModel):
    calendar_id: str
    zone_id: str | None
    depot_id: str
    date: date
    start: datetime
    end: datetime
    service_level: str
    fee: Fee
    fill: Fill
    green: bool
    detour_s: int | None = Field(
        description="Extra driving to fit the stop into the day's plan; None without a plan"
    )
    plan_checked: bool = Field(description="Whether a plan of the day was checked")


class UnavailableOut(BaseModel):
    calendar_id: str
    zone_id: str | None
    date: date
    start: datetime
    end: datetime
    reason: str = Field(description="outside_zone|past_cutoff|full|blackout|unreachable")
    detail: str


class QuoteOut(BaseModel):
    zone_ids: list[str]
    windows: list[WindowOut]
    unavailable: list[UnavailableOut]


class ReservationIn(_In):
    """Hold one window of a calendar for a few minutes. ``start`` is the window's start as the
    quote gave it; the address is checked again."""

    calendar_id: str = Field(min_length=1, max_length=32)
    start: AwareDatetime = Field(description="The window's start, with its offset")
    address: PointIn
    parcels: list[ParcelIn] = Field(default_factory=lambda: [ParcelIn()], max_length=100)


class ReservationOut(BaseModel):
    id: str
    calendar_id: str
    status: str
    window: dict[str, datetime]
    service_level: str
    fee: Fee
    reserved_until: datetime
    order_id: str | None


# --- Self-service ---------------------------------------------------------------------------


class RescheduleIn(_In):
    """Move the delivery to another window the calendar offers for the order's address."""

    calendar_id: str = Field(min_length=1, max_length=32)
    start: AwareDatetime = Field(description="The window's start, with its offset")


class NeighbourIn(_In):
    name: str = Field(min_length=1, max_length=100)
    house_number: str = Field(min_length=1, max_length=20)


class SafePlaceIn(_In):
    place: str = Field(min_length=1, max_length=200, description="e.g. 'behind the blue gate'")
    photo_consent: bool = Field(description="The driver photographs the parcel where left")


class RedirectIn(_In):
    """Where the parcel goes instead of the door: exactly the part of ``kind``."""

    kind: Literal["neighbour", "safe_place", "pickup_point"]
    neighbour: NeighbourIn | None = None
    safe_place: SafePlaceIn | None = None
    pickup_point_id: str | None = Field(default=None, max_length=32)

    @model_validator(mode="after")
    def _parts(self) -> RedirectIn:
        given = {
            "neighbour": self.neighbour is not None,
            "safe_place": self.safe_place is not None,
            "pickup_point": self.pickup_point_id is not None,
        }
        if not given[self.kind]:
            field = "pickup_point_id" if self.kind == "pickup_point" else self.kind
            raise ValueError(f"kind {self.kind} needs {field}")
        others = [k for k, v in given.items() if v and k != self.kind]
        if others:
            raise ValueError(f"kind {self.kind} takes no {', '.join(others)}")
        if self.safe_place is not None and not self.safe_place.photo_consent:
            raise ValueError("a safe place needs consent to a photo of the parcel where left")
        return self


class HoldIn(_In):
    """Hold deliveries while the recipient is away: nothing comes before ``until``."""

    until: date


class InstructionsIn(_In):
    instructions: str | None = Field(max_length=1000)


class ChoiceOut(BaseModel):
    """The order's delivery options as the recipient left them."""

    order_id: str
    status: str
    window: dict[str, datetime] | None
    window_sequence: int
    instructions: str | None
    redirect: dict[str, Any] | None
    held_until: date | None


class DeliveryOptionsOut(BaseModel):
    """What the recipient may still change and pick: for a tracking page or a shop's front
    end."""

    open: bool = Field(description="Whether the delivery can still be changed")
    closed_reason: str | None = Field(description="Why not, in words for the recipient")
    windows: list[WindowOut] = Field(description="Windows it can be moved to")
    pickup_points: list[PickupPointOut]
    choice: ChoiceOut
