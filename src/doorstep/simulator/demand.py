"""The day's demand, drawn from the seed alone (pure: no database, no network).

Who orders, from where, when they book (and so whether the order is booked ahead, same-day or
for the weekend), what they will do before the driver comes (reschedule, add instructions,
send the parcel to a neighbour or a safe place, hold it while away) and whether they will be
at home. :func:`draw_orders` gives the same list for the same arguments.

Counting: ``orders`` is the number of orders **for the simulated day** (booked ahead or the same
day); the weekend bookings come on top (about one in twenty), are booked, confirmed and counted
apart, and are not delivered on the day.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from doorstep.simulator.city import City, StreetPoint

__all__ = [
    "Booking",
    "Change",
    "DemandModel",
    "OrderSpec",
    "draw_orders",
    "next_saturday",
    "not_at_home",
    "redirect_or_hold",
]

FIRST_NAMES = (
    "Ada", "Alain", "Alice", "Anna", "Antoine", "Camille", "Chiara", "Claire", "Elena",
    "Emma", "Giulia", "Hugo", "Ines", "Jean", "Julien", "Laura", "Léa", "Louis", "Lucas",
    "Marco", "Maria", "Mathilde", "Nicolas", "Noah", "Olivia", "Paul", "Pierre", "Sofia",
    "Théo", "Aino", "Eero", "Helmi", "Onni", "Grace", "Alan", "Oscar", "Zoé", "Rafael",
)  # fmt: skip
LAST_NAMES = (
    "Bianchi", "Bernard", "Dubois", "Durand", "Ferrari", "Fontaine", "Garcia", "Girard",
    "Grimaldi", "Hopper", "Korhonen", "Lambert", "Laine", "Lefebvre", "Lovelace", "Martin",
    "Mercier", "Moreau", "Notari", "Petit", "Rossi", "Roux", "Russo", "Turing", "Virtanen",
)  # fmt: skip
CHECKOUT_GAP = timedelta(seconds=61)
INSTRUCTIONS = (
    "Door code 4821, third floor",
    "Ring twice, the bell is weak",
    "Leave it with the concierge if I am out",
    "Side entrance on the left, blue door",
    "Please call when you are downstairs",
)


class Booking(StrEnum):
    AHEAD = "ahead"  # booked on an earlier day for the simulated day
    SAME_DAY = "same_day"  # booked on the day, before the same-day cut-off
    WEEKEND = "weekend"  # booked for the coming Saturday


class Change(StrEnum):
    NONE = "none"
    RESCHEDULE = "reschedule"  # moves to a later window of the day on the tracking page
    INSTRUCTIONS = "instructions"  # adds delivery instructions on the tracking page
    NEIGHBOUR = "neighbour"  # sends the parcel to a neighbour on the tracking page
    SAFE_PLACE = "safe_place"  # asks for it to be left in a safe place (photo agreed)
    HOLD = "hold"  # away: holds the delivery until a later day on the tracking page


@dataclass(frozen=True)
class DemandModel:
    same_day_share: float = 0.10
    weekend_per_order: float = 0.05
    not_home_chance: float = 0.05
    reschedule_chance: float = 0.04
    instructions_chance: float = 0.08
    # Drawn apart from the rest (redirect_or_hold), for recipients who are home and change
    # nothing else, so adding them left every other draw of a seed as it was.
    neighbour_chance: float = 0.02
    safe_place_chance: float = 0.02
    hold_chance: float = 0.01
    days_ahead: int = 3
    # Local hours: ahead bookings between these (on days before the simulated day) ...
    ahead_hours: tuple[float, float] = (8.0, 20.5)
    # ... same-day bookings between these (on the day; the calendar's cut-off is after).
    same_day_hours: tuple[float, float] = (6.0, 9.5)
    # Self-service changes happen between these local hours of the day (before routes start).
    change_hours: tuple[float, float] = (6.5, 7.75)
    # A recipient not at home rebooks this many minutes after the failed attempt.
    rebook_after_min: tuple[float, float] = (20.0, 120.0)


@dataclass(frozen=True)
class OrderSpec:
    index: int
    reference: str
    booking: Booking
    booked_at: datetime  # UTC
    target_day: date
    window_pick: float  # [0, 1): which of the offered windows the customer takes
    name: str
    phone: str
    email: str
    locale: str
    street: str
    house_number: str
    lat: float
    lon: float
    parcels: tuple[float, ...]  # kg each
    not_home: bool
    change: Change
    change_at: datetime | None  # UTC
    instructions: str | None  # what the recipient adds (Change.INSTRUCTIONS)
    rebook_after_min: float


def next_saturday(day: date) -> date:
    """The first Saturday after ``day`` (a week later when ``day`` is a Saturday)."""
    return day + timedelta(days=(5 - day.weekday()) % 7 or 7)


def not_at_home(seed: int, reference: str, chance: float) -> bool:
    """Whether the recipient of ``reference`` is out at the first attempt (seeded, pure)."""
    return random.Random(f"{seed}:not-home:{reference}").random() < chance


def redirect_or_hold(seed: int, reference: str, model: DemandModel) -> tuple[Change, float]:
    """Whether the recipient of ``reference`` sends the parcel to a neighbour or a safe place,
    or holds it, and when in the change hours (a share of them); seeded and pure, a stream of
    its own."""
    rng = random.Random(f"{seed}:redirect-or-hold:{reference}")
    roll, when = rng.random(), rng.random()
    for change, chance in (
        (Change.NEIGHBOUR, model.neighbour_chance),
        (Change.SAFE_PLACE, model.safe_place_chance),
        (Change.HOLD, model.hold_chance),
    ):
        if roll < chance:
            return change, when
        roll -= chance
    return Change.NONE, when


def _local(day: date, hours: float, tz: ZoneInfo) -> datetime:
    minutes = round(hours * 60)
    return datetime.combine(day, time(0), tz) + timedelta(minutes=minutes)


def _pick_locale(rng: random.Random, locales: Sequence[tuple[str, float]]) -> str:
    roll, acc = rng.random(), 0.0
    for code, share in locales:
        acc += share
        if roll < acc:
            return code
    return locales[-1][0]


def draw_orders(
    *,
    seed: int,
    orders: int,
    day: date,
    city: City,
    places: Sequence[StreetPoint],
    model: DemandModel | None = None,
) -> list[OrderSpec]:
    """The day's ``orders`` (plus the weekend's), sorted by booking time."""
    if orders < 1:
        raise ValueError("a day needs at least one order")
    if not places:
        raise ValueError("no street to deliver to")
    model = model or DemandModel()
    rng = random.Random(f"{seed}:demand")
    tz = ZoneInfo(city.timezone)
    weekend = round(orders * model.weekend_per_order)
    same_day = round(orders * model.same_day_share)
    kinds = (
        [Booking.SAME_DAY] * same_day
        + [Booking.AHEAD] * (orders - same_day)
        + [Booking.WEEKEND] * weekend
    )
    rng.shuffle(kinds)
    saturday = next_saturday(day)
    drafts = []
    for kind in kinds:
        if kind is Booking.SAME_DAY:
            lo, hi = model.same_day_hours
            booked = _local(day, rng.uniform(lo, hi), tz)
        else:
            back = rng.randint(1, model.days_ahead)
            lo, hi = model.ahead_hours
            booked = _local(day - timedelta(days=back), rng.uniform(lo, hi), tz)
        drafts.append((booked, kind, rng.random()))
    drafts.sort(key=lambda d: d[0])
    # One customer at a time, a checkout taking a minute: distinct booking instants give
    # orders ids (which sort by creation time) in booking order, so the plan replays.
    previous: datetime | None = None
    for n, (booked, kind, pick) in enumerate(drafts):
        if previous is not None and booked < previous + CHECKOUT_GAP:
            booked = previous + CHECKOUT_GAP
            drafts[n] = (booked, kind, pick)
        previous = booked
    out: list[OrderSpec] = []
    for index, (booked, kind, pick) in enumerate(drafts):
        reference = f"DS-{seed}-{index + 1:04d}"
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        digits = "".join(str(rng.randint(0, 9)) for _ in range(city.phone_digits))
        place = places[rng.randrange(len(places))]
        parcels = tuple(round(rng.uniform(0.3, 8.0), 1) for _ in range(rng.choice((1, 1, 1, 2, 3))))
        roll = rng.random()
        change = Change.NONE
        if kind is not Booking.WEEKEND:
            if roll < model.reschedule_chance:
                change = Change.RESCHEDULE
            elif roll < model.reschedule_chance + model.instructions_chance:
                change = Change.INSTRUCTIONS
        change_at = None
        if change is not Change.NONE:
            lo, hi = model.change_hours
            change_at = max(_local(day, rng.uniform(lo, hi), tz), booked + timedelta(minutes=5))
        home = kind is not Booking.WEEKEND and not not_at_home(
            seed, reference, model.not_home_chance
        )
        if change is Change.NONE and home:
            change, share = redirect_or_hold(seed, reference, model)
            if change is not Change.NONE:
                lo, hi = model.change_hours
                at = _local(day, lo + (hi - lo) * share, tz)
                change_at = max(at, booked + timedelta(minutes=5))
        out.append(
            OrderSpec(
                index=index,
                reference=reference,
                booking=kind,
                booked_at=booked.astimezone(ZoneInfo("UTC")),
                target_day=saturday if kind is Booking.WEEKEND else day,
                window_pick=pick,
                name=f"{first} {last}",
                phone=f"{city.phone_prefix}{digits}",
                email=f"{_ascii(first)}.{_ascii(last)}.{index + 1}@example.com".lower(),
                locale=_pick_locale(rng, city.locales),
                street=place.street,
                house_number=str(rng.randint(1, 60)),
                lat=place.lat,
                lon=place.lon,
                parcels=parcels,
                not_home=kind is not Booking.WEEKEND
                and not_at_home(seed, reference, model.not_home_chance),
                change=change,
                change_at=None if change_at is None else change_at.astimezone(ZoneInfo("UTC")),
                instructions=rng.choice(INSTRUCTIONS) if change is Change.INSTRUCTIONS else None,
                rebook_after_min=rng.uniform(*model.rebook_after_min),
            )
        )
    return out


def _ascii(text: str) -> str:
    import unicodedata

    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in folded if c.isalnum())
