"""OSM way tags → who may travel a way, in which direction, and how fast.

Deliberately small and documented rather than complete (OSRM's Lua profiles are the complete
version). Per profile:

* **van**: ``motorway`` … ``service`` and ``road`` (not ``service=emergency_access``), access
  from ``goods`` > ``motor_vehicle`` > ``vehicle`` > ``access``; oneway respected (``yes``,
  ``-1``, implied on roundabouts and motorways; ``reversible``/``alternating`` ways are left
  out). Speed = ``maxspeed`` (or the highway class speed) x ``urban_factor``.
* **cargo_bike**: the same roads except motorways and trunks (a trunk only with an explicit
  ``bicycle=yes``), plus ``cycleway``, ``track``, ``path``, and ``footway``/``pedestrian``/
  ``bridleway`` where ``bicycle`` explicitly allows it; never ``steps``. Access from
  ``bicycle`` > ``vehicle`` > ``access`` (``use_sidepath`` closes). Oneway is respected unless
  ``oneway:bicycle=no`` or a ``cycleway*=opposite*`` tag lets bicycles go against the flow;
  ``oneway:bicycle=yes/-1`` applies to bicycles alone.
* **walking**: footways, pedestrian streets, paths, steps, tracks and every road but motorways
  (trunks and cycleways only with explicit ``foot`` permission). Access from ``foot`` >
  ``access``. No oneway.

The speed is capped by the profile's ``max_speed_kmh`` (18 km/h for the cargo bike, 5 km/h on
foot; 3 km/h on steps).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from doorstep.routing.travel.base import Profile

# The way tags the loaders keep (everything the rules below read).
RELEVANT_TAGS = (
    "highway",
    "area",
    "oneway",
    "junction",
    "maxspeed",
    "access",
    "vehicle",
    "motor_vehicle",
    "goods",
    "bicycle",
    "foot",
    "service",
    "oneway:bicycle",
    "cycleway",
    "cycleway:left",
    "cycleway:right",
    "cycleway:both",
    "sidewalk",
)

MPH = 1.609344
KNOT = 1.852

# Free-flow speed by highway class when no maxspeed is tagged (km/h).
HIGHWAY_SPEED_KMH: Mapping[str, float] = MappingProxyType(
    {
        "motorway": 90.0,
        "motorway_link": 45.0,
        "trunk": 70.0,
        "trunk_link": 40.0,
        "primary": 50.0,
        "primary_link": 30.0,
        "secondary": 45.0,
        "secondary_link": 30.0,
        "tertiary": 40.0,
        "tertiary_link": 25.0,
        "unclassified": 35.0,
        "residential": 30.0,
        "living_street": 10.0,
        "service": 15.0,
        "road": 30.0,
        "track": 12.0,
        "cycleway": 18.0,
        "path": 12.0,
        "footway": 8.0,
        "pedestrian": 8.0,
        "bridleway": 8.0,
        "corridor": 5.0,
        "steps": 3.0,
    }
)

# Implicit limits written as "<country>:<zone>"; country-specific values first.
_ZONE_SPEED_KMH: Mapping[str, float] = MappingProxyType(
    {
        "urban": 50.0,
        "rural": 90.0,
        "trunk": 110.0,
        "motorway": 130.0,
        "living_street": 20.0,
        "bicycle_road": 30.0,
        "pedestrian": 6.0,
        "walk": 6.0,
        "nsl_single": 60 * MPH,
        "nsl_dual": 70 * MPH,
        "nsl_restricted": 30 * MPH,
        "de:rural": 100.0,
        "fr:rural": 80.0,
        "ru:urban": 60.0,
        "it:motorway": 130.0,
        "gb:motorway": 70 * MPH,
        "us:urban": 25 * MPH,
    }
)
_NUMBER = re.compile(r"^(\d+(?:\.\d+)?)\s*(km/h|kmh|kph|mph|knots)?$")
_ZONE_NUMBER = re.compile(r"^(?:zone|zone:|zone_)(\d+)$")
_CLOSED = frozenset(
    {"no", "private", "agricultural", "forestry", "emergency", "military", "use_sidepath"}
)
_PERMITTED = frozenset({"yes", "designated", "permissive", "destination", "delivery"})

_DRIVABLE = frozenset(
    {
        "motorway",
        "motorway_link",
        "trunk",
        "trunk_link",
        "primary",
        "primary_link",
        "secondary",
        "secondary_link",
        "tertiary",
        "tertiary_link",
        "unclassified",
        "residential",
        "living_street",
        "service",
        "road",
    }
)
_MOTORWAY = frozenset({"motorway", "motorway_link"})
_TRUNK = frozenset({"trunk", "trunk_link"})
_BIKE_OPEN = (_DRIVABLE - _MOTORWAY - _TRUNK) | {"cycleway", "track", "path"}
_BIKE_IF_ALLOWED = frozenset({"footway", "pedestrian", "bridleway"}) | _TRUNK
_WALK_OPEN = (_DRIVABLE - _MOTORWAY - _TRUNK) | {
    "footway",
    "pedestrian",
    "path",
    "steps",
    "track",
    "corridor",
    "bridleway",
}
_WALK_IF_ALLOWED = frozenset({"cycleway"}) | _TRUNK


@dataclass(frozen=True)
class ProfileRules:
    """How one profile moves: its access tag hierarchy (most specific first), its top speed
    and the factor applied to posted speeds (junctions, lights, parking in town)."""

    access_keys: tuple[str, ...]
    max_speed_kmh: float
    urban_factor: float


PROFILE_RULES: Mapping[Profile, ProfileRules] = MappingProxyType(
    {
        Profile.VAN: ProfileRules(("goods", "motor_vehicle", "vehicle", "access"), 110.0, 0.8),
        Profile.CARGO_BIKE: ProfileRules(("bicycle", "vehicle", "access"), 18.0, 1.0),
        Profile.WALKING: ProfileRules(("foot", "access"), 5.0, 1.0),
    }
)


@dataclass(frozen=True)
class WayRule:
    """The outcome for one way: may the profile travel it along its node order (``forward``)
    and against it (``backward``), and at what speed."""

    forward: bool
    backward: bool
    speed_kmh: float

    @property
    def usable(self) -> bool:
        return self.forward or self.backward


CLOSED = WayRule(False, False, 0.0)


def parse_maxspeed(value: str | None) -> float | None:
    """A ``maxspeed`` tag in km/h: ``"50"``, ``"30 mph"``, ``"FR:urban"``, ``"DE:zone30"``,
    ``"walk"``, ``"50;30"`` (the lowest). ``None`` for ``none``, ``signals``, ``variable`` and
    anything unreadable (the highway class decides then)."""
    if not value:
        return None
    speeds = [s for s in (_parse_one_speed(part) for part in value.split(";")) if s is not None]
    return min(speeds) if speeds else None


def _parse_one_speed(raw: str) -> float | None:
    text = raw.strip().lower()
    match = _NUMBER.match(text)
    if match:
        number = float(match.group(1))
        unit = match.group(2)
        if unit == "mph":
            number *= MPH
        elif unit == "knots":
            number *= KNOT
        return number if number > 0 else None
    if text in ("walk", "walking"):
        return _ZONE_SPEED_KMH["walk"]
    if ":" not in text:
        return None
    country, zone = text.split(":", 1)
    if f"{country}:{zone}" in _ZONE_SPEED_KMH:
        return _ZONE_SPEED_KMH[f"{country}:{zone}"]
    if zone in _ZONE_SPEED_KMH:
        return _ZONE_SPEED_KMH[zone]
    zone_number = _ZONE_NUMBER.match(zone)
    if zone_number:
        return float(zone_number.group(1))
    return None


def _values(tag: str | None) -> list[str]:
    return [v.strip().lower() for v in tag.split(";")] if tag else []


def _access_open(tags: Mapping[str, str], keys: tuple[str, ...]) -> bool:
    """The most specific access tag present decides; a multi-value tag is open when one of
    its values is (``private;delivery`` lets a delivery van in)."""
    for key in keys:
        values = _values(tags.get(key))
        if values:
            return any(v not in _CLOSED for v in values)
    return True


def _explicitly_allowed(tags: Mapping[str, str], key: str) -> bool:
    return any(v in _PERMITTED for v in _values(tags.get(key)))


def _oneway(tags: Mapping[str, str], implied: bool) -> tuple[bool, bool] | None:
    """(forward, backward) from ``oneway``; ``None`` for reversible/alternating ways."""
    value = (tags.get("oneway") or "").strip().lower()
    if value in ("yes", "true", "1"):
        return True, False
    if value in ("-1", "reverse"):
        return False, True
    if value in ("reversible", "alternating"):
        return None
    if value == "no":
        return True, True
    if implied or tags.get("junction") in ("roundabout", "circular"):
        return True, False
    return True, True


def _speed(tags: Mapping[str, str], highway: str, rules: ProfileRules) -> float:
    posted = parse_maxspeed(tags.get("maxspeed"))
    base = posted if posted is not None else HIGHWAY_SPEED_KMH.get(highway, 30.0)
    cap = 3.0 if highway == "steps" else rules.max_speed_kmh
    return max(1.0, min(base * rules.urban_factor, cap))


def way_rule(tags: Mapping[str, str], profile: Profile) -> WayRule:
    """Whether and how fast ``profile`` travels a way with these tags."""
    highway = tags.get("highway", "")
    if not highway or tags.get("area") == "yes":
        return CLOSED
    rules = PROFILE_RULES[profile]
    if not _access_open(tags, rules.access_keys):
        return CLOSED
    if profile is Profile.VAN:
        if highway not in _DRIVABLE or tags.get("service") == "emergency_access":
            return CLOSED
        direction = _oneway(tags, implied=highway == "motorway")
    elif profile is Profile.CARGO_BIKE:
        allowed = highway in _BIKE_OPEN or (
            highway in _BIKE_IF_ALLOWED and _explicitly_allowed(tags, "bicycle")
        )
        if not allowed:
            return CLOSED
        direction = _bike_direction(tags)
    else:
        allowed = highway in _WALK_OPEN or (
            highway in _WALK_IF_ALLOWED and _explicitly_allowed(tags, "foot")
        )
        if not allowed:
            return CLOSED
        direction = (True, True)
    if direction is None:
        return CLOSED
    return WayRule(direction[0], direction[1], _speed(tags, highway, rules))


def _bike_direction(tags: Mapping[str, str]) -> tuple[bool, bool] | None:
    own = (tags.get("oneway:bicycle") or "").strip().lower()
    if own in ("yes", "true", "1"):
        return True, False
    if own in ("-1", "reverse"):
        return False, True
    if own == "no":
        return True, True
    contraflow = any(
        (tags.get(key) or "").startswith("opposite")
        for key in ("cycleway", "cycleway:left", "cycleway:right", "cycleway:both")
    )
    if contraflow:
        return True, True
    return _oneway(tags, implied=False)
