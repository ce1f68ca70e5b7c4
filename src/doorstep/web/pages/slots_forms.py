"""From the delivery-options console forms to the API's input models, and back.

A calendar's windows are typed one per line, ``DAYS START-END CAPACITY [FEE] [minutes=N]``:
``mon-fri 18:00-20:00 40 4.90``, ``sat,sun 09:00-12:00 25 7.90 minutes=600``, ``daily
10:00-12:00 20``. Blackout dates are ``YYYY-MM-DD`` separated by spaces, commas or lines.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from doorstep.domain.dispatch.schemas import DAYS
from doorstep.domain.errors import FieldError
from doorstep.domain.orders.schemas import field_errors
from doorstep.domain.slots.models import PickupPoint, ServiceZone, SlotCalendar
from doorstep.domain.slots.schemas import (
    CalendarIn,
    CalendarPatch,
    PickupPointIn,
    PickupPointPatch,
    ZoneIn,
    ZonePatch,
)
from doorstep.web.pages.fleet_forms import FormInvalid

M = TypeVar("M", bound=BaseModel)
_TIMES = re.compile(r"^(\d{1,2}:\d{2})-(\d{1,2}:\d{2})$")


def _days(token: str) -> list[str]:
    if token.lower() in ("daily", "every", "all"):
        return list(DAYS)
    out: list[str] = []
    for part in token.lower().split(","):
        first, sep, last = part.partition("-")
        if first not in DAYS or (sep and last not in DAYS):
            raise ValueError(f"{part!r} is not a day or a range of days (mon ... sun)")
        if sep:
            lo, hi = DAYS.index(first), DAYS.index(last)
            if hi < lo:
                raise ValueError(f"{part!r} runs backwards")
            out += DAYS[lo : hi + 1]
        else:
            out.append(first)
    return out


def parse_windows(text: str) -> list[dict[str, Any]]:
    """The windows typed one per line; a FormInvalid naming each bad line."""
    windows: list[dict[str, Any]] = []
    errors: list[FieldError] = []
    for n, raw in enumerate(text.splitlines(), start=1):
        tokens = raw.split()
        if not tokens:
            continue
        try:
            if len(tokens) < 3:
                raise ValueError("write days, start-end and capacity, e.g. mon-fri 18:00-20:00 40")
            times = _TIMES.match(tokens[1])
            if times is None:
                raise ValueError(f"{tokens[1]!r} is not start-end, e.g. 18:00-20:00")
            start, end = (t if len(t) == 5 else "0" + t for t in times.groups())
            window: dict[str, Any] = {
                "days": _days(tokens[0]),
                "start": start,
                "end": end,
                "capacity": int(tokens[2]),
            }
            for token in tokens[3:]:
                if token.startswith("minutes="):
                    window["vehicle_minutes"] = int(token.removeprefix("minutes="))
                else:
                    window["fee_cents"] = int(Decimal(token.replace(",", ".")) * 100)
            windows.append(window)
        except (ValueError, InvalidOperation) as exc:
            errors.append(FieldError("windows", f"line {n}: {exc}"))
    if errors:
        raise FormInvalid(errors)
    return windows


def _compact(days: list[str]) -> str:
    idx = sorted(DAYS.index(d) for d in days)
    if idx == list(range(7)):
        return "daily"
    runs: list[list[int]] = []
    for i in idx:
        if runs and i == runs[-1][-1] + 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    parts = []
    for run in runs:
        if len(run) >= 3:
            parts.append(f"{DAYS[run[0]]}-{DAYS[run[-1]]}")
        else:
            parts += [DAYS[i] for i in run]
    return ",".join(parts)


def format_windows(rules: list[dict[str, Any]]) -> str:
    lines = []
    for rule in rules:
        line = f"{_compact(rule['days'])} {rule['start']}-{rule['end']} {rule['capacity']}"
        fee = int(rule.get("fee_cents") or 0)
        if fee:
            line += f" {fee // 100}.{fee % 100:02d}"
        if rule.get("vehicle_minutes"):
            line += f" minutes={rule['vehicle_minutes']}"
        lines.append(line)
    return "\n".join(lines)


def _validated(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = []
        for error in field_errors(exc):
            name = re.sub(r"\[\d+\].*$", "", error.field)
            index = re.match(r"^windows\[(\d+)\]", error.field)
            message = f"line {int(index.group(1)) + 1}: {error.message}" if index else error.message
            errors.append(FieldError(name, message, error.code))
        raise FormInvalid(errors) from exc


def _blank(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


# --- Zones ----------------------------------------------------------------------------------


def _geometry(text: str) -> Any:
    try:
        return json.loads(text or "null")
    except json.JSONDecodeError as exc:
        message = f"not JSON: {exc.msg} (line {exc.lineno})"
        raise FormInvalid([FieldError("geometry", message)]) from exc


def zone_in(form: Mapping[str, str]) -> ZoneIn:
    return _validated(
        ZoneIn,
        {
            "depot_id": form.get("depot_id", ""),
            "name": form.get("name", ""),
            "geometry": _geometry(form.get("geometry", "")),
            "active": form.get("active") == "1",
        },
    )


def zone_patch(form: Mapping[str, str]) -> ZonePatch:
    return _validated(
        ZonePatch,
        {
            "name": form.get("name", ""),
            "geometry": _geometry(form.get("geometry", "")),
            "active": form.get("active") == "1",
        },
    )


def zone_values(zone: ServiceZone) -> dict[str, str]:
    return {
        "depot_id": zone.depot_id,
        "name": zone.name,
        "geometry": json.dumps(zone.geometry, indent=1),
        "active": "1" if zone.active else "",
    }


# --- Calendars ------------------------------------------------------------------------------


def _calendar_data(form: Mapping[str, str]) -> dict[str, Any]:
    blackout = re.split(r"[\s,;]+", form.get("blackout_dates", "").strip())
    return {
        "zone_id": _blank(form.get("zone_id")),
        "name": form.get("name", ""),
        "windows": parse_windows(form.get("windows", "")),
        "same_day_cutoff": _blank(form.get("same_day_cutoff")),
        "next_day_cutoff": _blank(form.get("next_day_cutoff")),
        "lead_time_minutes": form.get("lead_time_minutes") or 60,
        "horizon_days": form.get("horizon_days") or 14,
        "blackout_dates": [d for d in blackout if d],
        "active": form.get("active") == "1",
    }


def calendar_in(form: Mapping[str, str]) -> CalendarIn:
    data = _calendar_data(form)
    data["depot_id"] = form.get("depot_id", "")
    data["currency"] = form.get("currency") or "EUR"
    return _validated(CalendarIn, data)


def calendar_patch(form: Mapping[str, str]) -> CalendarPatch:
    return _validated(CalendarPatch, _calendar_data(form))


def calendar_values(cal: SlotCalendar) -> dict[str, str]:
    return {
        "depot_id": cal.depot_id,
        "zone_id": cal.zone_id or "",
        "name": cal.name,
        "windows": format_windows(cal.rules),
        "same_day_cutoff": cal.same_day_cutoff or "",
        "next_day_cutoff": cal.next_day_cutoff or "",
        "lead_time_minutes": str(cal.lead_time_minutes),
        "horizon_days": str(cal.horizon_days),
        "blackout_dates": " ".join(cal.closed_dates),
        "currency": cal.currency,
        "active": "1" if cal.active else "",
    }


# --- Pickup points --------------------------------------------------------------------------


def _point_data(form: Mapping[str, str]) -> dict[str, Any]:
    return {
        "name": form.get("name", ""),
        "kind": form.get("kind", ""),
        "address": {
            "line1": form.get("line1", ""),
            "city": form.get("city", ""),
            "postal_code": _blank(form.get("postal_code")),
            "country": form.get("country", ""),
            "lat": form.get("lat", ""),
            "lon": form.get("lon", ""),
        },
        "active": form.get("active") == "1",
    }


def _point_errors(model: type[M], data: dict[str, Any]) -> M:
    try:
        return _validated(model, data)
    except FormInvalid as exc:
        # address.lat -> lat: the form's inputs are flat
        raise FormInvalid(
            [FieldError(e.field.removeprefix("address."), e.message, e.code) for e in exc.errors]
        ) from exc


def pickup_point_in(form: Mapping[str, str]) -> PickupPointIn:
    return _point_errors(PickupPointIn, _point_data(form))


def pickup_point_patch(form: Mapping[str, str]) -> PickupPointPatch:
    return _point_errors(PickupPointPatch, _point_data(form))


def pickup_point_values(point: PickupPoint) -> dict[str, str]:
    return {
        "name": point.name,
        "kind": point.kind,
        "line1": point.address_line1,
        "city": point.city,
        "postal_code": point.postal_code or "",
        "country": point.country,
        "lat": str(point.lat),
        "lon": str(point.lon),
        "active": "1" if point.active else "",
    }
