"""The forms of the fleet pages (:mod:`doorstep.web.pages.fleet`): what the browser posts,
turned into the dispatch domain's own input models, and the objections of those models and of
the dispatch verbs turned back into messages beside the fields that caused them.

The rules are the schemas' and the verbs' (:mod:`doorstep.domain.dispatch.schemas`,
:mod:`doorstep.domain.dispatch.resources`); this module checks only the form's own syntax,
which the JSON API does not have: opening hours typed as ``08:00-12:00, 14:00-18:00``, local
date-times typed without an offset (the merchant's timezone is added), break times typed as
clock times on the shift's day, break lengths in whole minutes and comma-separated skills.

An edit form sends every field, so it is validated with the *creating* model first (a field
left empty is "required", not "unchanged") and then handed to the verb as a patch of all its
fields.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ValidationError

from doorstep.domain.dispatch.models import Depot, Driver, Shift, Vehicle
from doorstep.domain.dispatch.schemas import (
    DAYS,
    DepotIn,
    DepotPatch,
    DriverIn,
    DriverPatch,
    ShiftIn,
    ShiftPatch,
    VehicleIn,
    VehiclePatch,
)
from doorstep.domain.errors import DomainError, FieldError

__all__ = [
    "DASH",
    "DAY_LABELS",
    "FormInvalid",
    "FormState",
    "Problem",
    "depot_in",
    "depot_patch",
    "depot_values",
    "driver_in",
    "driver_patch",
    "driver_values",
    "format_ranges",
    "humanise",
    "local_input",
    "number_text",
    "shift_in",
    "shift_patch",
    "shift_values",
    "vehicle_in",
    "vehicle_patch",
    "vehicle_values",
]

M = TypeVar("M", bound=BaseModel)

DASH = "\u2013"  # ranges are shown with an en dash; typed with any dash or "to"
DAY_LABELS: dict[str, str] = dict(
    zip(
        DAYS,
        ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
        strict=True,
    )
)
LOCAL_INPUT = "%Y-%m-%dT%H:%M"  # what <input type="datetime-local"> sends and shows
_RANGE_SPLIT = re.compile(r"\s*(?:[-\u2010-\u2015]|\bto\b)\s*")
_CLOCK = re.compile(r"^(\d{1,2})(?:[:.h](\d{2}))?$")
_SHIFT_REF = re.compile(r"\bshift (shf_[0-9A-Za-z]+)")

# Field paths of the API (RFC 9457 ``errors[].field``) -> the form's input names.
_PATHS: dict[str, dict[str, str]] = {
    "drivers": {p: p for p in ("name", "phone", "device_id", "skills")},
    "vehicles": {
        p: p for p in ("name", "profile", "capacity_weight_kg", "capacity_parcels", "skills")
    },
    "depots": {
        "name": "name",
        **{f"address.{p}": p for p in ("line1", "city", "postal_code", "country", "lat", "lon")},
        "address": "line1",
        "opening_hours": "hours",
    },
    "shifts": {
        **{p: p for p in ("driver_id", "vehicle_id", "depot_id", "start_at", "end_at")},
        "return_to_depot": "return_to_depot",
        "break": "break_earliest",
        "break.earliest_start": "break_earliest",
        "break.latest_start": "break_latest",
        "break.duration_s": "break_minutes",
    },
}
# API names inside messages, in words ("must be after start_at" -> "must be after the start").
_WORDS = (
    ("earliest_start", "the earliest break start"),
    ("start_at", "the start"),
    ("end_at", "the end"),
    ("device_id", "device id"),
)


def humanise(message: str) -> str:
    """A domain message for people: API field names in words, a capital first letter."""
    for name, words in _WORDS:
        message = message.replace(name, words)
    return message[:1].upper() + message[1:]


# --- Form state: the values typed and what is wrong with them --------------------------------


@dataclass(frozen=True)
class Problem:
    """A message about the whole form (a conflict), with an optional link to the culprit."""

    text: str
    link: str = ""
    link_text: str = ""


@dataclass
class FormState:
    """A form as the template draws it: the values (as typed, or of the object being edited),
    messages per input name and messages about the whole form."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def value(self, name: str) -> str:
        """The value of input ``name`` ("" when none)."""
        return self.values.get(name, "")

    def error(self, name: str) -> str:
        """The messages for input ``name``, joined ("" when it is fine)."""
        return " ".join(self.errors.get(name, []))

    @property
    def invalid(self) -> bool:
        """Whether anything is wrong with the form."""
        return bool(self.errors or self.problems)

    def add(self, name: str, message: str) -> None:
        """Add a message for input ``name``."""
        text = humanise(message).rstrip(".") + "."
        if text not in self.errors.setdefault(name, []):
            self.errors[name].append(text)

    def add_field_errors(self, kind: str, errors: list[FieldError]) -> None:
        """Place field errors (API paths or input names) beside their inputs."""
        paths = _PATHS[kind]
        inputs = set(paths.values())
        for error in errors:
            path = error.field.split("[")[0]
            message = error.message
            if kind == "depots" and path == "opening_hours":
                day, sep, rest = message.partition(": ")
                if sep and day in DAYS:
                    path, message = f"hours_{day}", rest
            name = path if path in inputs or path.startswith("hours_") else paths.get(path)
            if name is None:
                self.problems.append(Problem(humanise(f"{error.field}: {message}")))
            else:
                self.add(name, message)

    def add_domain_error(self, kind: str, exc: DomainError) -> None:
        """Show a verb's refusal: field errors beside their inputs, a conflict on top (with a
        link to the shift it clashes with, when it names one)."""
        if exc.errors:
            self.add_field_errors(kind, exc.errors)
            return
        match = _SHIFT_REF.search(exc.detail)
        if match:
            link = f"/console/drivers/shifts/{match.group(1)}"
            self.problems.append(Problem(humanise(exc.detail) + ".", link, "Open that shift"))
        else:
            self.problems.append(Problem(humanise(exc.detail) + "."))


class FormInvalid(Exception):
    """The form cannot become an input model: its field errors (API paths or input names)."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__(f"{len(errors)} invalid field(s)")
        self.errors = errors


# --- From typed text to the domain's models --------------------------------------------------


def _dotted(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)
    return out


def _schema_message(path: str, error: Mapping[str, Any]) -> str:
    """Pydantic's message for a form: short, and in the form's units."""
    kind = str(error.get("type", ""))
    ctx = error.get("ctx") or {}
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    if kind == "missing":
        return "required"
    if path == "break.duration_s" and kind in ("greater_than", "less_than_equal"):
        if "gt" in ctx:
            return "must be more than 0 minutes"
        return f"at most {ctx['le'] // 60} minutes"
    if path == "device_id" and kind == "string_pattern_mismatch":
        return "letters, digits and symbols only, without spaces"
    if kind == "literal_error":
        return "choose one of the list"
    if kind in ("float_parsing", "float_type"):
        return "enter a number"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "enter a whole number"
    return message.replace("Input should be", "must be").replace("String should", "should")


def _validate(model: type[M], data: Mapping[str, Any], extra: list[FieldError]) -> M:
    """``model`` from ``data``, or :class:`FormInvalid` with the schema's errors and
    ``extra`` (the form's own syntax errors) together."""
    try:
        result = model.model_validate(dict(data))
    except ValidationError as exc:
        known = {e.field for e in extra}  # a value the form could not read is not "missing"
        errors = [
            FieldError(path, _schema_message(path, e), str(e["type"]))
            for e in exc.errors()
            if (path := _dotted(tuple(e["loc"]))) not in known
        ]
        raise FormInvalid(extra + errors) from exc
    if extra:
        raise FormInvalid(extra)
    return result


def _text(values: Mapping[str, str], name: str) -> str | None:
    """The stripped value of ``name``, or None when empty (so "required" reads as such)."""
    value = values.get(name, "").strip()
    return value or None


def _present(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


def _skill_list(values: Mapping[str, str]) -> list[str]:
    return [s.strip() for s in values.get("skills", "").split(",") if s.strip()]


def number_text(value: float) -> str:
    """A number as a form shows it: ``1500`` rather than ``1500.0``."""
    return str(int(value)) if float(value).is_integer() else str(value)


def driver_in(values: Mapping[str, str]) -> DriverIn:
    """A new driver from the form."""
    data = {
        "name": _text(values, "name"),
        "phone": _text(values, "phone"),
        "device_id": _text(values, "device_id"),
        "skills": _skill_list(values),
    }
    return _validate(DriverIn, _present(data), [])


def driver_patch(values: Mapping[str, str]) -> DriverPatch:
    """Every field of a driver from the edit form (an empty phone or device id clears it)."""
    return _validate(DriverPatch, driver_in(values).model_dump(exclude={"active"}), [])


def driver_values(driver: Driver) -> dict[str, str]:
    """A driver as the edit form shows it."""
    return {
        "name": driver.name,
        "phone": driver.phone or "",
        "device_id": driver.device_id or "",
        "skills": ", ".join(driver.skills or []),
    }


def vehicle_in(values: Mapping[str, str]) -> VehicleIn:
    """A new vehicle from the form."""
    data = {
        "name": _text(values, "name"),
        "profile": _text(values, "profile"),
        "capacity_weight_kg": _text(values, "capacity_weight_kg"),
        "capacity_parcels": _text(values, "capacity_parcels"),
        "skills": _skill_list(values),
    }
    return _validate(VehicleIn, _present(data), [])


def vehicle_patch(values: Mapping[str, str]) -> VehiclePatch:
    """Every field of a vehicle from the edit form."""
    return _validate(VehiclePatch, vehicle_in(values).model_dump(exclude={"active"}), [])


def vehicle_values(vehicle: Vehicle) -> dict[str, str]:
    """A vehicle as the edit form shows it."""
    return {
        "name": vehicle.name,
        "profile": vehicle.profile,
        "capacity_weight_kg": number_text(vehicle.capacity_weight_kg),
        "capacity_parcels": str(vehicle.capacity_parcels),
        "skills": ", ".join(vehicle.skills or []),
    }


def _clock_text(text: str) -> str:
    """``8`` -> ``08:00``, ``8:30``/``8.30``/``8h30`` -> ``08:30``; anything else unchanged
    (for the schema to judge)."""
    match = _CLOCK.match(text)
    if not match:
        return text
    return f"{int(match.group(1)):02d}:{match.group(2) or '00'}"


def _ranges(text: str) -> list[list[str]] | None:
    """``08:00-12:00, 14:00-18:00`` as ``[["08:00", "12:00"], ["14:00", "18:00"]]``, or None
    when a part is not written as two times around a dash."""
    out: list[list[str]] = []
    for part in re.split(r"[,;]", text):
        if not part.strip():
            continue
        ends = _RANGE_SPLIT.split(part.strip())
        if len(ends) != 2 or not all(ends):
            return None
        out.append([_clock_text(ends[0]), _clock_text(ends[1])])
    return out


def format_ranges(ranges: list[list[str]] | None) -> str:
    """Opening ranges as typed in the form: ``08:00-12:00, 14:00-18:00``."""
    return ", ".join(f"{start}{DASH}{end}" for start, end in ranges or [])


def depot_in(values: Mapping[str, str]) -> DepotIn:
    """A new depot from the form; a day left empty is closed."""
    hours: dict[str, list[list[str]]] = {}
    syntax: list[FieldError] = []
    for day in DAYS:
        text = values.get(f"hours_{day}", "").strip()
        if not text:
            continue
        ranges = _ranges(text)
        if ranges is None:
            syntax.append(FieldError(f"hours_{day}", f"write each range as 08:00{DASH}18:00"))
        else:
            hours[day] = ranges
    address = {
        name: _text(values, name)
        for name in ("line1", "city", "postal_code", "country", "lat", "lon")
    }
    data = {"name": _text(values, "name"), "address": _present(address), "opening_hours": hours}
    return _validate(DepotIn, _present(data), syntax)


def depot_patch(values: Mapping[str, str]) -> DepotPatch:
    """Every field of a depot from the edit form."""
    return _validate(DepotPatch, depot_in(values).model_dump(), [])


def depot_values(depot: Depot) -> dict[str, str]:
    """A depot as the edit form shows it."""
    out = {
        "name": depot.name,
        "line1": depot.address_line1,
        "city": depot.city,
        "postal_code": depot.postal_code or "",
        "country": depot.country,
        "lat": number_text(depot.lat),
        "lon": number_text(depot.lon),
    }
    hours = depot.opening_hours or {}
    out.update({f"hours_{day}": format_ranges(hours.get(day)) for day in DAYS})
    return out


def _local_datetime(
    values: Mapping[str, str], name: str, tz: ZoneInfo, errors: list[FieldError]
) -> datetime | None:
    """A ``datetime-local`` value read in the merchant's timezone (None when empty or bad)."""
    text = _text(values, name)
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        errors.append(FieldError(name, "enter a date and a time, e.g. 2026-11-25 08:00"))
        return None
    return value if value.tzinfo else value.replace(tzinfo=tz)


def _break_time(
    values: Mapping[str, str],
    name: str,
    path: str,
    shift: tuple[datetime | None, datetime | None],
    errors: list[FieldError],
) -> datetime | None:
    """A break's clock time on the shift's day; on a shift past midnight, a time earlier than
    the start is the next day's."""
    text = _text(values, name)
    if text is None:
        return None
    try:
        clock = time.fromisoformat(_clock_text(text))
    except ValueError:
        errors.append(FieldError(path, "enter a time, e.g. 12:30"))
        return None
    start, end = shift
    if start is None:
        return None
    day: date = start.date()
    overnight = end is not None and end.date() > start.date()
    if overnight and clock < start.timetz().replace(tzinfo=None):
        day += timedelta(days=1)
    return datetime.combine(day, clock, tzinfo=start.tzinfo)


def shift_in(values: Mapping[str, str], tz: ZoneInfo) -> ShiftIn:
    """A new shift from the form: local start and end, an optional break."""
    syntax: list[FieldError] = []
    start = _local_datetime(values, "start_at", tz, syntax)
    end = _local_datetime(values, "end_at", tz, syntax)
    data: dict[str, Any] = {
        "driver_id": _text(values, "driver_id"),
        "vehicle_id": _text(values, "vehicle_id"),
        "depot_id": _text(values, "depot_id"),
        "start_at": start,
        "end_at": end,
        "return_to_depot": bool(values.get("return_to_depot")),
    }
    if any(_text(values, n) for n in ("break_earliest", "break_latest", "break_minutes")):
        earliest = _break_time(
            values, "break_earliest", "break.earliest_start", (start, end), syntax
        )
        latest = _break_time(values, "break_latest", "break.latest_start", (start, end), syntax)
        minutes = _text(values, "break_minutes")
        seconds = None
        if minutes is not None:
            try:
                seconds = int(minutes) * 60
            except ValueError:
                syntax.append(FieldError("break.duration_s", "enter whole minutes, e.g. 30"))
        if start is not None:  # the break's day is the start's: judged once the start is known
            brk = {"earliest_start": earliest, "latest_start": latest, "duration_s": seconds}
            data["break"] = _present(brk)
    return _validate(ShiftIn, _present(data), syntax)


def shift_patch(values: Mapping[str, str], tz: ZoneInfo) -> ShiftPatch:
    """Every field of a shift from the edit form (no break fields: no break)."""
    return _validate(ShiftPatch, shift_in(values, tz).model_dump(by_alias=True), [])


def local_input(value: datetime, tz: ZoneInfo) -> str:
    """An instant as a ``datetime-local`` input shows it, in the merchant's timezone."""
    return value.astimezone(tz).strftime(LOCAL_INPUT)


def shift_values(shift: Shift, tz: ZoneInfo) -> dict[str, str]:
    """A shift as the edit form shows it, times in the merchant's timezone."""
    out = {
        "driver_id": shift.driver_id,
        "vehicle_id": shift.vehicle_id,
        "depot_id": shift.depot_id,
        "start_at": local_input(shift.start_at, tz),
        "end_at": local_input(shift.end_at, tz),
        "return_to_depot": "1" if shift.return_to_depot else "",
    }
    if shift.break_earliest_at and shift.break_latest_at and shift.break_duration_s:
        out["break_earliest"] = shift.break_earliest_at.astimezone(tz).strftime("%H:%M")
        out["break_latest"] = shift.break_latest_at.astimezone(tz).strftime("%H:%M")
        out["break_minutes"] = str(shift.break_duration_s // 60)
    return out
