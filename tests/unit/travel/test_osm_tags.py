"""OSM tag rules: maxspeed parsing, access, oneway and speeds per profile."""

from __future__ import annotations

import pytest

from doorstep.routing.travel.base import Profile
from doorstep.routing.travel.osm_tags import parse_maxspeed, way_rule


def dirs(tags: dict[str, str], profile: Profile) -> tuple[bool, bool]:
    rule = way_rule(tags, profile)
    return rule.forward, rule.backward


@pytest.mark.parametrize(
    ("tag", "kmh"),
    [
        ("50", 50.0),
        ("30 mph", 48.28),
        ("20mph", 32.19),
        ("FR:urban", 50.0),
        ("FR:rural", 80.0),
        ("DE:zone30", 30.0),
        ("DE:zone:30", 30.0),
        ("RU:living_street", 20.0),
        ("walk", 6.0),
        ("50;30", 30.0),
        ("GB:nsl_single", 96.56),
        (None, None),
        ("none", None),
        ("signals", None),
        ("variable", None),
        ("fast", None),
        ("0", None),
    ],
)
def test_parse_maxspeed(tag: str | None, kmh: float | None) -> None:
    """Numbers, units, country zones and multi-values become km/h; the rest is unknown."""
    result = parse_maxspeed(tag)
    if kmh is None:
        assert result is None
    else:
        assert result == pytest.approx(kmh, abs=0.01)


def test_van_respects_oneway_and_roundabouts() -> None:
    """oneway=yes/-1 and roundabouts are one direction for a van."""
    assert dirs({"highway": "residential", "oneway": "yes"}, Profile.VAN) == (True, False)
    assert dirs({"highway": "residential", "oneway": "-1"}, Profile.VAN) == (False, True)
    assert dirs({"highway": "primary", "junction": "roundabout"}, Profile.VAN) == (
        True,
        False,
    )
    assert dirs({"highway": "motorway"}, Profile.VAN) == (True, False)
    assert not way_rule({"highway": "residential", "oneway": "reversible"}, Profile.VAN).usable


def test_bicycles_may_go_against_the_flow_only_when_tagged() -> None:
    """oneway:bicycle=no or a cycleway=opposite* lets a bike go both ways."""
    oneway = {"highway": "residential", "oneway": "yes"}
    assert dirs(oneway, Profile.CARGO_BIKE) == (True, False)
    assert dirs({**oneway, "oneway:bicycle": "no"}, Profile.CARGO_BIKE) == (True, True)
    assert dirs({**oneway, "cycleway": "opposite_lane"}, Profile.CARGO_BIKE) == (
        True,
        True,
    )
    assert (
        way_rule({"highway": "cycleway", "oneway:bicycle": "yes"}, Profile.CARGO_BIKE).backward
        is False
    )


def test_walking_ignores_oneway() -> None:
    """Pedestrians walk a oneway street both ways."""
    rule = way_rule({"highway": "residential", "oneway": "yes"}, Profile.WALKING)
    assert (rule.forward, rule.backward) == (True, True)


@pytest.mark.parametrize(
    ("tags", "van", "bike", "walk"),
    [
        ({"highway": "motorway"}, True, False, False),
        ({"highway": "trunk"}, True, False, False),
        ({"highway": "trunk", "bicycle": "yes", "foot": "yes"}, True, True, True),
        ({"highway": "footway"}, False, False, True),
        ({"highway": "footway", "bicycle": "designated"}, False, True, True),
        ({"highway": "cycleway"}, False, True, False),
        ({"highway": "steps", "bicycle": "yes"}, False, False, True),
        ({"highway": "residential", "access": "private"}, False, False, False),
        ({"highway": "residential", "access": "private;delivery"}, True, True, True),
        ({"highway": "residential", "access": "no", "foot": "yes"}, False, False, True),
        ({"highway": "residential", "motor_vehicle": "no"}, False, True, True),
        ({"highway": "pedestrian", "area": "yes"}, False, False, False),
        ({"highway": "service", "service": "emergency_access"}, False, True, True),
        ({"building": "yes"}, False, False, False),
    ],
)
def test_who_may_use_a_way(tags: dict[str, str], van: bool, bike: bool, walk: bool) -> None:
    """Highway class plus the most specific access tag decide per profile."""
    assert way_rule(tags, Profile.VAN).usable is van
    assert way_rule(tags, Profile.CARGO_BIKE).usable is bike
    assert way_rule(tags, Profile.WALKING).usable is walk


def test_speeds_come_from_maxspeed_or_class_and_are_capped() -> None:
    """Van: posted or class speed x 0.8; bike capped at 18, walking at 5, steps at 3 km/h."""
    assert way_rule({"highway": "primary", "maxspeed": "70"}, Profile.VAN).speed_kmh == 56.0
    assert way_rule({"highway": "residential"}, Profile.VAN).speed_kmh == 24.0
    assert way_rule({"highway": "primary"}, Profile.CARGO_BIKE).speed_kmh == 18.0
    assert way_rule({"highway": "living_street"}, Profile.CARGO_BIKE).speed_kmh == 10.0
    assert way_rule({"highway": "primary"}, Profile.WALKING).speed_kmh == 5.0
    assert way_rule({"highway": "steps"}, Profile.WALKING).speed_kmh == 3.0
