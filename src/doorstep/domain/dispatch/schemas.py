"""What the dispatch API accepts and answers: depots, vehicles, drivers, shifts and plans.

Input models refuse unknown fields (``extra="forbid"``). Times go in with an offset and come out
in the merchant's timezone. The ``*_out`` functions turn rows into answer models; they never
touch the database. Plans are answered with the models of :mod:`.plan_schemas`.
"""

from __future__ import annotations

import itertools
import re
from datetime import date, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from doorstep.domain.dispatch.models import Depot, Driver, Shift, Vehicle
from doorstep.domain.orders.schemas import normalise_country, normalise_phone

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"^(?:[01]\d|2[0-3]):[0-5]\d$|^24:00$")
_SKILL = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
MAX_PLAN_TIME_LIMIT_S = 300.0

ProfileName = Literal["van", "cargo_bike", "walking"]
ShiftStatus = Literal["planned", "active", "ended", "dropped"]
T = TypeVar("T")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _skills(value: list[str] | None) -> list[str] | None:
    """Skills are short lower-case slugs (``refrigerated``, ``heavy_lift``); kept sorted, unique."""
    if value is None:
        return None
    out = set()
    for raw in value:
        skill = raw.strip().lower()
        if not _SKILL.match(skill):
            raise ValueError(f"skill {raw!r} must be a lower-case slug of 1 to 40 characters")
        out.add(skill)
    if len(out) > 30:
        raise ValueError("at most 30 skills")
    return sorted(out)


def _phone(value: str | None) -> str | None:
    """A phone number in E.164 (``+33612345678``); spaces and dashes are tolerated. Staff
    numbers have no address to guess a country from, so they must be international."""
    if value is None or value == "":
        return None
    if not value.startswith("+"):
        raise ValueError("must be in international E.164 form, e.g. +33612345678")
    return normalise_phone(value, None)


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def _opening_hours(value: dict[str, Any] | None) -> dict[str, list[list[str]]] | None:
    """``{"mon": [["08:00", "20:00"]], ...}``: days of the week, ordered non-overlapping ranges
    ``HH:MM`` (``24:00`` allowed as an end). A missing day means closed."""
    if value is None:
        return None
    out: dict[str, list[list[str]]] = {}
    for day, ranges in value.items():
        if day not in DAYS:
            raise ValueError(f"unknown day {day!r}; use {', '.join(DAYS)}")
        if not isinstance(ranges, list):
            raise ValueError(f"{day}: expected a list of [open, close] pairs")
        clean: list[list[str]] = []
        for pair in ranges:
            if not isinstance(pair, list | tuple) or len(pair) != 2:
                raise ValueError(f"{day}: each range is a pair [open, close]")
            start, end = pair
            if not isinstance(start, str) or not isinstance(end, str):
                raise ValueError(f"{day}: times are strings HH:MM")
            if not _HHMM.match(start) or not _HHMM.match(end) or start == "24:00":
                raise ValueError(f"{day}: {start!r}-{end!r} is not HH:MM-HH:MM")
            if _minutes(end) <= _minutes(start):
                raise ValueError(f"{day}: {start}-{end} closes before it opens")
            clean.append([start, end])
        clean.sort(key=lambda p: _minutes(p[0]))
        for prev, cur in itertools.pairwise(clean):
            if _minutes(cur[0]) < _minutes(prev[1]):
                raise ValueError(f"{day}: {prev[0]}-{prev[1]} overlaps {cur[0]}-{cur[1]}")
        out[day] = clean
    return out


Skills = Annotated[list[str], Field(max_length=30)]
Name = Annotated[str, Field(min_length=1, max_length=200)]


# --- Depots ---------------------------------------------------------------------------------


class DepotAddressIn(_In):
    """A street address with its coordinates (WGS 84); without them the address is
    geocoded, and a depot that cannot be placed is refused (422)."""

    line1: str = Field(min_length=1, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    postal_code: str | None = Field(default=None, max_length=20)
    country: str = Field(description="ISO 3166-1 alpha-2")
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)

    @field_validator("country")
    @classmethod
    def _country(cls, value: str) -> str:
        return normalise_country(value)


class DepotIn(_In):
    """A new depot: where routes start and (usually) end."""

    name: Name
    address: DepotAddressIn
    opening_hours: dict[str, Any] = Field(
        default_factory=dict,
        description='{"mon": [["08:00", "20:00"]], ...} in the merchant\'s timezone',
    )

    @field_validator("opening_hours")
    @classmethod
    def _check_hours(cls, value: dict[str, Any] | None) -> dict[str, list[list[str]]] | None:
        return _opening_hours(value)


class DepotPatch(_In):
    """Fields to change on a depot; omitted fields stay as they are."""

    name: Name | None = None
    address: DepotAddressIn | None = None
    opening_hours: dict[str, Any] | None = None

    @field_validator("opening_hours")
    @classmethod
    def _check_hours(cls, value: dict[str, Any] | None) -> dict[str, list[list[str]]] | None:
        return _opening_hours(value)


class DepotAddressOut(BaseModel):
    """A street address with its coordinates."""

    line1: str
    city: str
    postal_code: str | None
    country: str
    lat: float
    lon: float


class DepotOut(BaseModel):
    """A depot as the API shows it."""

    id: str
    name: str
    address: DepotAddressOut
    opening_hours: dict[str, list[list[str]]]
    created_at: datetime


# --- Vehicles -------------------------------------------------------------------------------


class VehicleIn(_In):
    """A new vehicle: capacity in kg and parcels, a travel profile and skills."""

    name: str = Field(min_length=1, max_length=100)
    profile: ProfileName = "van"
    capacity_weight_kg: float = Field(gt=0, le=100_000)
    capacity_parcels: int = Field(ge=1, le=100_000)
    skills: Skills = Field(default_factory=list)
    active: bool = True

    @field_validator("skills")
    @classmethod
    def _check_skills(cls, value: list[str] | None) -> list[str] | None:
        return _skills(value)


class VehiclePatch(_In):
    """Fields to change on a vehicle; ``active: false`` takes it out of planning."""

    name: str | None = Field(default=None, min_length=1, max_length=100)
    profile: ProfileName | None = None
    capacity_weight_kg: float | None = Field(default=None, gt=0, le=100_000)
    capacity_parcels: int | None = Field(default=None, ge=1, le=100_000)
    skills: Skills | None = None
    active: bool | None = None

    @field_validator("skills")
    @classmethod
    def _check_skills(cls, value: list[str] | None) -> list[str] | None:
        return _skills(value)


class VehicleOut(BaseModel):
    """A vehicle as the API shows it."""

    id: str
    name: str
    profile: str
    capacity_weight_kg: float
    capacity_parcels: int
    skills: list[str]
    active: bool
    created_at: datetime


# --- Drivers --------------------------------------------------------------------------------

DeviceId = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[\x21-\x7e]+$")]


class DriverIn(_In):
    """A new driver; ``device_id`` is what their GPS app reports, unique across Doorstep."""

    name: Name
    phone: str | None = Field(default=None, description="E.164, e.g. +37799123456")
    device_id: DeviceId | None = Field(
        default=None, description="The id the driver's GPS app reports (OsmAnd id, OwnTracks tid)"
    )
    skills: Skills = Field(default_factory=list)
    active: bool = True

    @field_validator("phone")
    @classmethod
    def _check_phone(cls, value: str | None) -> str | None:
        return _phone(value)

    @field_validator("skills")
    @classmethod
    def _check_skills(cls, value: list[str] | None) -> list[str] | None:
        return _skills(value)


class DriverPatch(_In):
    """Fields to change on a driver; ``active: false`` takes them out of planning."""

    name: Name | None = None
    phone: str | None = None
    device_id: DeviceId | None = None
    skills: Skills | None = None
    active: bool | None = None

    @field_validator("phone")
    @classmethod
    def _check_phone(cls, value: str | None) -> str | None:
        return _phone(value)

    @field_validator("skills")
    @classmethod
    def _check_skills(cls, value: list[str] | None) -> list[str] | None:
        return _skills(value)


class DriverOut(BaseModel):
    """A driver as the API shows it."""

    id: str
    name: str
    phone: str | None
    device_id: str | None
    skills: list[str]
    active: bool
    created_at: datetime


# --- Shifts ---------------------------------------------------------------------------------


class BreakIn(_In):
    """A break taken somewhere between ``earliest_start`` and ``latest_start``."""

    earliest_start: AwareDatetime
    latest_start: AwareDatetime
    duration_s: int = Field(gt=0, le=4 * 3600)


class ShiftIn(_In):
    """A driver with a vehicle at a depot between two instants (with their offsets)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    driver_id: str = Field(min_length=1, max_length=32)
    vehicle_id: str = Field(min_length=1, max_length=32)
    depot_id: str = Field(min_length=1, max_length=32)
    start_at: AwareDatetime
    end_at: AwareDatetime
    brk: BreakIn | None = Field(default=None, alias="break")
    return_to_depot: bool = True


class ShiftPatch(_In):
    """Fields to change on a shift; ``status: dropped`` takes it out of planning."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    driver_id: str | None = Field(default=None, min_length=1, max_length=32)
    vehicle_id: str | None = Field(default=None, min_length=1, max_length=32)
    depot_id: str | None = Field(default=None, min_length=1, max_length=32)
    start_at: AwareDatetime | None = None
    end_at: AwareDatetime | None = None
    brk: BreakIn | None = Field(default=None, alias="break")
    return_to_depot: bool | None = None
    status: ShiftStatus | None = None


class BreakOut(BaseModel):
    """A shift's break window and duration."""

    earliest_start: datetime
    latest_start: datetime
    duration_s: int


class ShiftOut(BaseModel):
    """A shift as the API shows it, times in the merchant's timezone."""

    model_config = ConfigDict(populate_by_name=True)

    id: str
    driver_id: str
    vehicle_id: str
    depot_id: str
    start_at: datetime
    end_at: datetime
    brk: BreakOut | None = Field(alias="break")
    return_to_depot: bool
    status: str
    created_at: datetime


# --- Plans ----------------------------------------------------------------------------------


class _SearchIn(_In):
    """How long and how the optimiser searches (defaults: the settings' time limit and seed)."""

    time_limit_s: float | None = Field(default=None, gt=0, le=MAX_PLAN_TIME_LIMIT_S)
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)
    max_iterations: int | None = Field(
        default=None,
        ge=1,
        le=100_000_000,
        description=(
            "Also stop the search after this many iterations. With it, and a time limit the "
            "search does not reach, the same seed gives the same plan on any machine."
        ),
    )


class PlanCreate(_SearchIn):
    """Plan a depot's day: which depot, which day (merchant's timezone), how long to search."""

    depot_id: str = Field(min_length=1, max_length=32)
    date: date


class ReplanIn(_SearchIn):
    """Re-plan from now: shifts to drop (their remaining stops are redistributed)."""

    dropped_shift_ids: list[str] = Field(default_factory=list, max_length=500)


class MoveIn(_In):
    """Move an order's stop (or an unassigned order) to a place on a route."""

    order_id: str = Field(min_length=1, max_length=32)
    to_route_id: str = Field(min_length=1, max_length=32)
    position: int = Field(ge=0, description="0-based place in the destination route's stops")


class Page(BaseModel, Generic[T]):
    """One page of a list; pass ``next_cursor`` as ``after`` to get the next one."""

    items: list[T]
    next_cursor: str | None


# --- Serialisers ----------------------------------------------------------------------------


def local_time(value: datetime | None, tz: ZoneInfo) -> datetime | None:
    """``value`` in ``tz`` (None stays None)."""
    return value.astimezone(tz) if value is not None else None


def local_time_req(value: datetime, tz: ZoneInfo) -> datetime:
    """``value`` in ``tz``."""
    return value.astimezone(tz)


def depot_out(depot: Depot, tz: ZoneInfo) -> DepotOut:
    """The answer for a depot."""
    return DepotOut(
        id=depot.id,
        name=depot.name,
        address=DepotAddressOut(
            line1=depot.address_line1,
            city=depot.city,
            postal_code=depot.postal_code,
            country=depot.country,
            lat=depot.lat,
            lon=depot.lon,
        ),
        opening_hours=depot.opening_hours or {},
        created_at=local_time_req(depot.created_at, tz),
    )


def vehicle_out(vehicle: Vehicle, tz: ZoneInfo) -> VehicleOut:
    """The answer for a vehicle."""
    return VehicleOut(
        id=vehicle.id,
        name=vehicle.name,
        profile=vehicle.profile,
        capacity_weight_kg=vehicle.capacity_weight_kg,
        capacity_parcels=vehicle.capacity_parcels,
        skills=list(vehicle.skills or []),
        active=vehicle.active,
        created_at=local_time_req(vehicle.created_at, tz),
    )


def driver_out(driver: Driver, tz: ZoneInfo) -> DriverOut:
    """The answer for a driver."""
    return DriverOut(
        id=driver.id,
        name=driver.name,
        phone=driver.phone,
        device_id=driver.device_id,
        skills=list(driver.skills or []),
        active=driver.active,
        created_at=local_time_req(driver.created_at, tz),
    )


def shift_out(shift: Shift, tz: ZoneInfo) -> ShiftOut:
    """The answer for a shift, times in the merchant's timezone."""
    brk = None
    if shift.break_earliest_at and shift.break_latest_at and shift.break_duration_s:
        brk = BreakOut(
            earliest_start=local_time_req(shift.break_earliest_at, tz),
            latest_start=local_time_req(shift.break_latest_at, tz),
            duration_s=shift.break_duration_s,
        )
    return ShiftOut(
        id=shift.id,
        driver_id=shift.driver_id,
        vehicle_id=shift.vehicle_id,
        depot_id=shift.depot_id,
        start_at=local_time_req(shift.start_at, tz),
        end_at=local_time_req(shift.end_at, tz),
        brk=brk,
        return_to_depot=shift.return_to_depot,
        status=shift.status,
        created_at=local_time_req(shift.created_at, tz),
    )
