"""What GPS apps send, turned into :class:`Fix` values. Pure functions, no database.

Three documented formats (units as the apps send them; a :class:`Fix` is always SI, m/s):

* OsmAnd / Traccar Client, query form (``GET`` or ``POST`` ``?id=..&lat=..``, or the same as an
  ``application/x-www-form-urlencoded`` body): ``id`` (or ``deviceid``), ``timestamp`` (Unix
  seconds; Traccar's server also takes milliseconds, ISO 8601 and ``yyyy-MM-dd HH:mm:ss`` UTC),
  ``lat``, ``lon`` (or ``location=lat,lon``), ``speed`` in KNOTS, ``bearing``/``heading``,
  ``altitude``, ``accuracy`` m (OsmAnd: ``hdop``), ``batt`` %; and ``speed_mps``, Doorstep's
  name for a speed in m/s (what OsmAnd's own URL placeholder gives).
* Traccar Client, JSON form: ``{"device_id": .., "location": {"timestamp": ISO, "coords":
  {"latitude", "longitude", "speed" m/s, "heading", "accuracy", "altitude"}, "battery":
  {"level": 0-1}}}``; ``location`` may also be a list, and the whole body a list of such objects.
* OwnTracks JSON: ``{"_type": "location", "lat", "lon", "tst" s, "acc" m, "vel" km/h, "cog",
  "alt", "batt" %, "tid", "topic"}``.

Anything that is not such a payload raises :class:`MalformedPayload` (a 400). Values that parse
but are impossible (latitude 123) are *not* refused here: the screen drops and counts them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from doorstep.domain.errors import DomainError

__all__ = [
    "KNOT_MPS",
    "Fix",
    "MalformedPayload",
    "OwnTracksIdentity",
    "parse_osmand_json",
    "parse_osmand_query",
    "parse_owntracks",
]

KNOT_MPS = 1852.0 / 3600.0  # one knot in m/s
KMH_MPS = 1000.0 / 3600.0
# Below this a numeric timestamp is seconds, above it milliseconds (as Traccar's server decides).
_MILLIS_FROM = 2**31 - 1
MAX_FIXES_PER_REQUEST = 1000


class MalformedPayload(DomainError):
    status_code = 400
    title = "Malformed position"
    type_slug = "malformed-position"


@dataclass(frozen=True)
class Fix:
    """One position as a GPS app reported it, in SI units (UTC time, m/s, degrees, metres)."""

    recorded_at: datetime
    lat: float
    lon: float
    speed_mps: float | None = None
    heading_deg: float | None = None
    accuracy_m: float | None = None
    altitude_m: float | None = None
    battery_pct: float | None = None


@dataclass(frozen=True)
class OwnTracksIdentity:
    """Who an OwnTracks payload says it is: the topic's user and device, and the tracker id."""

    user: str | None
    device: str | None
    tid: str | None

    def candidates(self) -> list[str]:
        """Device ids to look up, most specific first: ``device``, ``user/device``, ``tid``."""
        out: list[str] = []
        if self.device:
            out.append(self.device)
            if self.user:
                out.append(f"{self.user}/{self.device}")
        if self.tid:
            out.append(self.tid)
        return list(dict.fromkeys(out))


def _number(value: Any, name: str) -> float | None:
    """A finite-or-not float from a JSON number or a query string; ``None`` when absent."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise MalformedPayload(f"{name} must be a number")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            raise MalformedPayload(f"{name} must be a number, got {value[:40]!r}") from None
    raise MalformedPayload(f"{name} must be a number")


def _required(value: Any, name: str) -> float:
    number = _number(value, name)
    if number is None:
        raise MalformedPayload(f"{name} is missing")
    return number


def _optional_non_negative(value: Any, name: str) -> float | None:
    """Apps send -1 (iOS) for "unknown" speed, heading and accuracy: that becomes ``None``."""
    number = _number(value, name)
    if number is None or not math.isfinite(number) or number < 0:
        return None
    return number


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _epoch(value: float, name: str) -> datetime:
    if not math.isfinite(value):
        raise MalformedPayload(f"{name} is not a time")
    seconds = value / 1000.0 if abs(value) > _MILLIS_FROM else value
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise MalformedPayload(f"{name} is out of range") from None


def parse_time(value: Any, name: str = "timestamp") -> datetime:
    """Unix seconds or milliseconds, ISO 8601 (``Z`` or an offset; no offset means UTC) or
    ``yyyy-MM-dd HH:mm:ss`` (UTC), the forms Traccar's own server accepts."""
    if isinstance(value, bool) or value is None or value == "":
        raise MalformedPayload(f"{name} is missing")
    if isinstance(value, int | float):
        return _epoch(float(value), name)
    if not isinstance(value, str):
        raise MalformedPayload(f"{name} must be a time")
    text = value.strip()
    try:
        return _epoch(float(text), name)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise MalformedPayload(f"{name} is not a time: {text[:40]!r}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _battery_pct(value: Any, name: str, *, fraction: bool) -> float | None:
    number = _optional_non_negative(value, name)
    if number is None:
        return None
    return min(100.0, number * 100.0 if fraction else number)


# --- OsmAnd / Traccar Client ----------------------------------------------------------------


def parse_osmand_query(params: Mapping[str, str], received_at: datetime) -> tuple[str, Fix]:
    """The query form: ``(device id, fix)``. A missing ``timestamp`` means "now"."""
    device_id = (params.get("id") or params.get("deviceid") or "").strip()
    if not device_id:
        raise MalformedPayload("id is missing")
    lat_raw, lon_raw = params.get("lat"), params.get("lon")
    if (lat_raw is None or lon_raw is None) and params.get("location"):
        lat_raw, _, lon_raw = params["location"].partition(",")
    stamp = params.get("timestamp")
    # ``speed`` is in knots (the protocol); ``speed_mps`` is Doorstep's own name for the m/s
    # that OsmAnd's online-tracking placeholder {5} gives (see the pairing's OsmAnd URL).
    speed_mps = _optional_non_negative(params.get("speed_mps"), "speed_mps")
    if speed_mps is None:
        knots = _optional_non_negative(params.get("speed"), "speed")
        speed_mps = None if knots is None else knots * KNOT_MPS
    # OsmAnd names its horizontal accuracy (m) ``hdop`` ({3}); Traccar Client says ``accuracy``.
    accuracy = params.get("accuracy") or params.get("hdop")
    fix = Fix(
        recorded_at=parse_time(stamp) if stamp else received_at,
        lat=_required(lat_raw, "lat"),
        lon=_required(lon_raw, "lon"),
        speed_mps=speed_mps,
        heading_deg=_optional_non_negative(params.get("bearing", params.get("heading")), "bearing"),
        accuracy_m=_optional_non_negative(accuracy, "accuracy"),
        altitude_m=_finite(_number(params.get("altitude"), "altitude")),
        battery_pct=_battery_pct(params.get("batt"), "batt", fraction=False),
    )
    return device_id, fix


def _json_location(location: Any, battery: Any) -> Fix:
    if not isinstance(location, dict):
        raise MalformedPayload("location must be an object")
    coords = location.get("coords")
    if not isinstance(coords, dict):
        raise MalformedPayload("location.coords is missing")
    own_battery = location.get("battery")
    level = (own_battery if isinstance(own_battery, dict) else battery or {}).get("level")
    return Fix(
        recorded_at=parse_time(location.get("timestamp"), "location.timestamp"),
        lat=_required(coords.get("latitude"), "location.coords.latitude"),
        lon=_required(coords.get("longitude"), "location.coords.longitude"),
        speed_mps=_optional_non_negative(coords.get("speed"), "speed"),
        heading_deg=_optional_non_negative(coords.get("heading"), "heading"),
        accuracy_m=_optional_non_negative(coords.get("accuracy"), "accuracy"),
        altitude_m=_finite(_number(coords.get("altitude"), "altitude")),
        battery_pct=_battery_pct(level, "battery.level", fraction=True),
    )


def parse_osmand_json(body: Any) -> list[tuple[str, Fix]]:
    """The JSON form (one object, an object whose ``location`` is a list, or a list of
    objects): ``(device id, fix)`` for each location."""
    items = body if isinstance(body, list) else [body]
    out: list[tuple[str, Fix]] = []
    for item in items:
        if not isinstance(item, dict):
            raise MalformedPayload("expected a JSON object with device_id and location")
        device_id = item.get("device_id")
        if not isinstance(device_id, str | int) or isinstance(device_id, bool):
            raise MalformedPayload("device_id is missing")
        device = str(device_id).strip()
        if not device:
            raise MalformedPayload("device_id is missing")
        locations = item.get("location")
        battery = item.get("battery") if isinstance(item.get("battery"), dict) else None
        for location in locations if isinstance(locations, list) else [locations]:
            out.append((device, _json_location(location, battery)))
    if not out:
        raise MalformedPayload("no location in the body")
    if len(out) > MAX_FIXES_PER_REQUEST:
        raise MalformedPayload(f"at most {MAX_FIXES_PER_REQUEST} locations per request")
    return out


# --- OwnTracks ------------------------------------------------------------------------------


def owntracks_topic_identity(topic: str | None) -> tuple[str | None, str | None]:
    """``owntracks/<user>/<device>`` -> ``(user, device)``; anything else -> ``(None, None)``."""
    if not topic:
        return None, None
    parts = topic.split("/")
    if len(parts) >= 3 and parts[1] and parts[2]:
        return parts[1], parts[2]
    return None, None


def parse_owntracks(
    body: Any, *, user: str | None = None, device: str | None = None
) -> tuple[OwnTracksIdentity, Fix | None]:
    """An OwnTracks message: who sent it and, for ``_type: location``, the fix (other types,
    such as ``lwt`` or ``transition``, carry no position: ``None``).

    ``user``/``device`` come from the MQTT topic or the ``X-Limit-U``/``X-Limit-D`` headers;
    without them the payload's own ``topic`` is used."""
    if not isinstance(body, dict):
        raise MalformedPayload("expected an OwnTracks JSON object")
    if user is None and device is None:
        topic = body.get("topic")
        user, device = owntracks_topic_identity(topic if isinstance(topic, str) else None)
    tid = body.get("tid")
    identity = OwnTracksIdentity(
        user=user or None,
        device=device or None,
        tid=tid.strip() or None if isinstance(tid, str) else None,
    )
    if body.get("_type") != "location":
        return identity, None
    vel_kmh = _optional_non_negative(body.get("vel"), "vel")
    fix = Fix(
        recorded_at=parse_time(body.get("tst"), "tst"),
        lat=_required(body.get("lat"), "lat"),
        lon=_required(body.get("lon"), "lon"),
        speed_mps=None if vel_kmh is None else vel_kmh * KMH_MPS,
        heading_deg=_optional_non_negative(body.get("cog"), "cog"),
        accuracy_m=_optional_non_negative(body.get("acc"), "acc"),
        altitude_m=_finite(_number(body.get("alt"), "alt")),
        battery_pct=_battery_pct(body.get("batt"), "batt", fraction=False),
    )
    return identity, fix
