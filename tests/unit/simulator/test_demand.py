"""The day's demand is drawn from the seed alone: the same seed gives the same orders, the
shares of same-day, weekend, not-at-home and self-service are what the model says, and every
booking comes before what it books."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest

from doorstep.simulator.city import StreetPoint, city_for, inside
from doorstep.simulator.demand import (
    Booking,
    Change,
    DemandModel,
    OrderSpec,
    draw_orders,
    next_saturday,
    not_at_home,
)

DAY = date(2026, 12, 8)  # a Tuesday
MONACO = city_for("monaco")
MONACO_TZ = ZoneInfo("Europe/Monaco")
PLACES = [
    StreetPoint(f"Rue {i}", 43.7300 + i * 0.0002, 7.4200 + (i % 7) * 0.0005) for i in range(60)
]


def _draw(seed: int = 7, orders: int = 300) -> list[OrderSpec]:
    return draw_orders(seed=seed, orders=orders, day=DAY, city=MONACO, places=PLACES)


def test_the_same_seed_draws_the_same_day_and_another_seed_another() -> None:
    """Replaying a seed replays the demand; changing it changes who orders and from where."""
    assert _draw(7) == _draw(7)
    assert [o.street for o in _draw(7)] != [o.street for o in _draw(8)]


def test_orders_count_the_day_and_weekend_bookings_come_on_top() -> None:
    """``orders`` is the day's orders; about one in twenty more are booked for Saturday."""
    drawn = _draw(orders=300)
    kinds = Counter(o.booking for o in drawn)
    assert kinds[Booking.AHEAD] + kinds[Booking.SAME_DAY] == 300
    assert kinds[Booking.WEEKEND] == 15 and kinds[Booking.SAME_DAY] == 30
    saturday = next_saturday(DAY)
    assert {o.target_day for o in drawn if o.booking is Booking.WEEKEND} == {saturday}
    assert {o.target_day for o in drawn if o.booking is not Booking.WEEKEND} == {DAY}


def test_bookings_are_in_time_order_and_before_what_they_book() -> None:
    """Ahead bookings are on earlier days, same-day ones on the day before 10:00, and the list
    is in booking order (the order the checkout sends them)."""
    drawn = _draw()
    assert [o.booked_at for o in drawn] == sorted(o.booked_at for o in drawn)
    for o in drawn:
        local = o.booked_at.astimezone(MONACO_TZ)
        if o.booking is Booking.SAME_DAY:
            assert local.date() == DAY and local.hour < 10
        else:
            assert DAY - timedelta(days=3) <= local.date() < DAY
        if o.change_at is not None:
            assert o.booked_at < o.change_at


def test_recipients_and_their_changes_follow_the_model() -> None:
    """Roughly the model's shares are not at home, reschedule, add instructions, redirect to a
    neighbour or a safe place, or hold; weekend orders are not delivered today, so nobody is
    out for them and nobody changes them."""
    model = DemandModel()
    drawn = _draw(orders=2000)
    day_orders = [o for o in drawn if o.booking is not Booking.WEEKEND]
    share = sum(o.not_home for o in day_orders) / len(day_orders)
    assert share == pytest.approx(model.not_home_chance, abs=0.015)
    changes = Counter(o.change for o in day_orders)
    assert changes[Change.RESCHEDULE] / len(day_orders) == pytest.approx(0.04, abs=0.015)
    assert changes[Change.INSTRUCTIONS] / len(day_orders) == pytest.approx(0.08, abs=0.02)
    # Redirects and holds come from recipients who are home and change nothing else.
    for kind, chance in (
        (Change.NEIGHBOUR, model.neighbour_chance),
        (Change.SAFE_PLACE, model.safe_place_chance),
        (Change.HOLD, model.hold_chance),
    ):
        assert changes[kind] > 0
        assert changes[kind] / len(day_orders) == pytest.approx(chance, abs=0.012), kind
    redirected = [o for o in day_orders if o.change in (Change.NEIGHBOUR, Change.SAFE_PLACE)]
    assert not any(o.not_home for o in redirected)
    weekend = [o for o in drawn if o.booking is Booking.WEEKEND]
    assert not any(o.not_home or o.change is not Change.NONE for o in weekend)
    assert all(o.instructions for o in day_orders if o.change is Change.INSTRUCTIONS)


def test_recipients_look_real_and_unique() -> None:
    """Phone numbers are E.164 in the city's plan, e-mails unique, locales ones we translate."""
    drawn = _draw()
    assert all(o.phone.startswith("+3776") and len(o.phone) == 13 for o in drawn)
    assert len({o.email for o in drawn}) == len(drawn)
    assert {o.locale for o in drawn} <= {"en", "fr", "fi"}
    assert len({o.reference for o in drawn}) == len(drawn)


def test_not_at_home_is_a_pure_draw_per_order() -> None:
    """The same order's recipient is out or in whatever else the day draws."""
    outs = [not_at_home(7, f"DS-7-{i:04d}", 0.05) for i in range(1000)]
    assert outs == [not_at_home(7, f"DS-7-{i:04d}", 0.05) for i in range(1000)]
    assert 20 <= sum(outs) <= 80
    assert not any(not_at_home(7, f"DS-7-{i:04d}", 0.0) for i in range(100))


def test_saturday_is_the_next_one() -> None:
    assert next_saturday(date(2026, 12, 8)) == date(2026, 12, 12)
    assert next_saturday(date(2026, 12, 12)) == date(2026, 12, 19)
    assert next_saturday(date(2026, 12, 13)) == date(2026, 12, 19)


def test_the_monaco_zone_holds_the_principality_not_nice() -> None:
    ring = MONACO.zone
    assert ring is not None
    assert inside(ring, 43.7384, 7.4246)  # Monte-Carlo
    assert not inside(ring, 43.7009, 7.2683)  # Nice


def test_a_day_needs_orders_and_places() -> None:
    with pytest.raises(ValueError):
        _draw(orders=0)
    with pytest.raises(ValueError):
        draw_orders(seed=1, orders=3, day=DAY, city=MONACO, places=[])


def test_no_two_customers_check_out_in_the_same_minute() -> None:
    """Bookings are at least a checkout apart, so orders are created (and their time-ordered
    ids sort) in booking order on every run."""
    drawn = _draw(orders=600)
    gaps = [(b.booked_at - a.booked_at).total_seconds() for a, b in itertools.pairwise(drawn)]
    assert min(gaps) >= 61
