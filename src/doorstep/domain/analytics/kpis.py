"""The KPIs as pure functions of a :class:`~doorstep.domain.analytics.rows.Period`: no database,
no clock. Each order's history is read once into :class:`OrderFacts`; summaries add facts up.

Definitions (ADR 0018 gives the reasons):

* on time: the delivery reached the door inside the order's promised ``[window_start,
  window_end]``: the attempt's ``stop.arrived`` event, else (no arrival recorded) the first
  ``delivery.delivered`` event's ``occurred_at``; orders without a window are not measured.
  The door, not the signature, because the window, the plan, the ETA and the delay warning all
  speak of the driver's arrival (ADR 0018);
* first attempt: of the orders whose first attempt ended in the period (their first
  ``delivery.failed`` or ``delivery.delivered`` event), the share delivered by it. An order that
  failed and was rebooked to another day still counts, as a miss, on the day it failed;
* failed attempts: ``delivery.failed`` events in the period, of the orders above;
* ETA error: per attempt (the events up to its arrival: its ``stop.arrived``, else its
  ``delivery.delivered`` or ``delivery.failed``; an ETA event after the arrival only states
  it and is no prediction), the ``delivery.eta_updated`` event chosen for each horizon is
  compared with the arrival: ``route_start`` the first after the attempt's
  ``delivery.out_for_delivery`` (else the attempt's first), ``5_stops`` / ``1_stop`` the first
  with ``stops_before`` at most 5 / 1; coverage is the arrival inside ``[earliest, latest]``;
* late and warned: delivered after ``window_end``; warned when a ``delivery.delayed`` event
  occurred before ``window_end`` (and before the delivery);
* duplicates: a sent message whose order, trigger (``topic``), channel and address (``target``)
  equal an earlier sent message's within the same attempt (attempts end at a
  ``delivery.failed``, ``order.rescheduled``, ``delivery.rescheduled`` or a window move); a
  webhook, whose every event is news, only when it carries an event already sent.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from doorstep.domain.analytics.rows import EventRow, MessageRow, OrderRow, Period, RouteRow
from doorstep.domain.analytics.schemas import (
    HORIZONS,
    SELF_SERVICE_KINDS,
    Group,
    RouteKpi,
    Spread,
    Summary,
)

ARRIVALS = frozenset({"stop.arrived", "delivery.delivered", "delivery.failed"})
ATTEMPT_OUTCOMES = frozenset({"delivery.delivered", "delivery.failed"})
RECIPIENT_CHANNELS = frozenset({"email", "sms", "chat"})
SELF_SERVICE_EVENTS = {
    "order.rescheduled": "rescheduled",
    "order.redirected": "redirected",
    "order.held": "held",
    "order.instructions_changed": "instructions_changed",
}
ATTEMPT_ENDS = frozenset({"delivery.failed", "order.rescheduled", "delivery.rescheduled"})
HORIZON_STOPS = {"5_stops": 5, "1_stop": 1}


@dataclass(frozen=True)
class EtaSample:
    """One prediction compared with the arrival it predicted."""

    horizon: str
    error_min: float
    covered: bool | None  # None when the event gave no [earliest, latest]


@dataclass
class OrderFacts:
    """What one order's history says, for the summaries to count."""

    order: OrderRow
    delivered_at: datetime | None = None
    # When the delivering attempt reached the door (its stop.arrived), else delivered_at.
    at_door: datetime | None = None
    failed_attempts: int = 0
    # The first attempt's outcome: when it ended, whether it delivered, whether it ended
    # inside the period.
    first_attempt_at: datetime | None = None
    first_attempt_delivered: bool = False
    first_attempt_in_period: bool = False
    warned_at: datetime | None = None
    eta: list[EtaSample] = field(default_factory=list)
    sent: list[MessageRow] = field(default_factory=list)
    duplicates: int = 0
    self_service: Counter[str] = field(default_factory=Counter)

    @property
    def delivered(self) -> bool:
        return self.delivered_at is not None

    @property
    def on_time(self) -> bool | None:
        """Delivered inside the promised window; None when not delivered or no window."""
        o = self.order
        if self.at_door is None or o.window_start is None or o.window_end is None:
            return None
        return o.window_start <= self.at_door <= o.window_end

    @property
    def late_by(self) -> timedelta | None:
        """How late the delivery reached the door after the window's end; None when not late."""
        end = self.order.window_end
        if self.at_door is None or end is None or self.at_door <= end:
            return None
        return self.at_door - end


def parse_time(value: object) -> datetime | None:
    """An ISO 8601 string from an event's data as an aware datetime (naive = UTC), or None."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _minutes(delta: timedelta) -> float:
    return delta.total_seconds() / 60.0


def _attempt_samples(
    pending: list[EventRow], ofd_seq: int | None, arrival: datetime
) -> list[EtaSample]:
    """The samples of one attempt: ``pending`` are its ETA events in order."""
    usable = [(ev, eta) for ev in pending if (eta := parse_time(ev.data.get("eta"))) is not None]
    if not usable:
        return []
    chosen: dict[str, tuple[EventRow, datetime]] = {}
    after_start = [pair for pair in usable if ofd_seq is not None and pair[0].seq > ofd_seq]
    chosen["route_start"] = (after_start or usable)[0]
    for horizon, stops in HORIZON_STOPS.items():
        for ev, eta in usable:
            before = ev.data.get("stops_before")
            if isinstance(before, int) and not isinstance(before, bool) and before <= stops:
                chosen[horizon] = (ev, eta)
                break
    samples = []
    for horizon in HORIZONS:
        if horizon not in chosen:
            continue
        ev, eta = chosen[horizon]
        earliest = parse_time(ev.data.get("earliest"))
        latest = parse_time(ev.data.get("latest"))
        covered = None if earliest is None or latest is None else earliest <= arrival <= latest
        samples.append(EtaSample(horizon, abs(_minutes(eta - arrival)), covered))
    return samples


def _window_moved(ev: EventRow) -> bool:
    return ev.type == "order.updated" and "window_sequence" in ev.data


def order_facts(
    order: OrderRow,
    events: Sequence[EventRow],
    messages: Sequence[MessageRow],
    period: tuple[datetime, datetime] | None = None,
) -> OrderFacts:
    """Read one order's events (any order; sorted here by ``seq``) and outbox messages.
    ``period`` (UTC, end excluded) bounds when a first attempt counts; None: whenever."""
    facts = OrderFacts(order)
    history = sorted(events, key=lambda e: e.seq)
    pending: list[EventRow] = []
    ofd_seq: int | None = None
    arrived_at: datetime | None = None  # the current attempt's stop.arrived
    attempt_ends: list[datetime] = []
    for ev in history:
        if ev.type in ATTEMPT_OUTCOMES and facts.first_attempt_at is None:
            facts.first_attempt_at = ev.occurred_at
            facts.first_attempt_delivered = ev.type == "delivery.delivered"
        if ev.type in ATTEMPT_ENDS or _window_moved(ev):
            attempt_ends.append(ev.occurred_at)
        if ev.type in SELF_SERVICE_EVENTS:
            facts.self_service[SELF_SERVICE_EVENTS[ev.type]] += 1
        if facts.delivered_at is not None:
            continue  # nothing after the delivery changes its figures
        if ev.type == "delivery.eta_updated":
            if arrived_at is None:  # after the arrival an "ETA" is the arrival: no prediction
                pending.append(ev)
        elif ev.type == "delivery.out_for_delivery":
            ofd_seq = ev.seq
        elif ev.type == "delivery.delayed":
            end = order.window_end
            if facts.warned_at is None and end is not None and ev.occurred_at < end:
                facts.warned_at = ev.occurred_at
        if ev.type in ARRIVALS:
            # One arrival per attempt: the completion or failure after a stop.arrived is the
            # same visit, not a second one to predict.
            if ev.type == "stop.arrived" or arrived_at is None:
                facts.eta.extend(_attempt_samples(pending, ofd_seq, ev.occurred_at))
            pending, ofd_seq = [], None
        if ev.type == "stop.arrived":
            arrived_at = ev.occurred_at
        if ev.type == "delivery.failed":
            facts.failed_attempts += 1
            arrived_at = None
        elif ev.type == "delivery.delivered":
            facts.delivered_at = ev.occurred_at
            facts.at_door = arrived_at or ev.occurred_at
    # Failed attempts are counted on the day they were made, like first attempts.
    facts.failed_attempts = sum(
        1
        for ev in history
        if ev.type == "delivery.failed"
        and (period is None or period[0] <= ev.occurred_at < period[1])
    )
    at = facts.first_attempt_at
    facts.first_attempt_in_period = at is not None and (
        period is None or period[0] <= at < period[1]
    )
    seen: set[tuple[str, str, str, int | str]] = set()
    for msg in sorted(messages, key=lambda m: m.created_at):
        if msg.status != "sent":
            continue
        facts.sent.append(msg)
        attempt = sum(1 for at in attempt_ends if at <= msg.created_at)
        # A webhook repeats an earlier one only when it carries the same event again.
        which: int | str = attempt
        if msg.channel == "webhook" and msg.event_id is not None:
            which = msg.event_id
        key = (msg.topic, msg.channel, msg.target, which)
        if key in seen:
            facts.duplicates += 1
        seen.add(key)
    return facts


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) with linear interpolation between ranks; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def _spread(values: Sequence[float]) -> Spread:
    median, p90 = percentile(values, 0.5), percentile(values, 0.9)
    return Spread(
        n=len(values),
        median=None if median is None else round(median, 1),
        p90=None if p90 is None else round(p90, 1),
    )


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def summarise(facts: Iterable[OrderFacts], routes: Iterable[RouteRow] | None = None) -> Summary:
    """Add up the facts of a set of orders (and the routes of the same slice, if any). Orders
    that are not listed in the period (see :class:`OrderRow`) count only in the first-attempt
    rate and the failed attempts."""
    every = list(facts)
    rows = [f for f in every if f.order.listed]
    firsts = [f for f in every if f.first_attempt_in_period]
    first_ok = sum(1 for f in firsts if f.first_attempt_delivered)
    delivered = [f for f in rows if f.delivered]
    measured = [f for f in delivered if f.on_time is not None]
    late = [f for f in delivered if f.late_by is not None]
    warned = [f for f in late if f.warned_at is not None]
    sent = [m for f in delivered for m in f.sent]
    by_channel = Counter(m.channel for m in sent)
    samples = [s for f in rows for s in f.eta]
    self_service: Counter[str] = Counter()
    for f in rows:
        self_service.update(f.self_service)
    route_list = None if routes is None else list(routes)
    recipient = sum(n for channel, n in by_channel.items() if channel in RECIPIENT_CHANNELS)
    return Summary(
        orders=len(rows),
        delivered=len(delivered),
        cancelled=sum(1 for f in rows if f.order.status == "cancelled"),
        failed_attempts=sum(f.failed_attempts for f in every),
        on_time=sum(1 for f in measured if f.on_time),
        on_time_rate=_share(sum(1 for f in measured if f.on_time), len(measured)),
        first_attempt=first_ok,
        first_attempt_rate=_share(first_ok, len(firsts)),
        eta_abs_error_min={
            h: _spread([s.error_min for s in samples if s.horizon == h]) for h in HORIZONS
        },
        eta_window_coverage={
            h: _share(
                sum(1 for s in samples if s.horizon == h and s.covered),
                sum(1 for s in samples if s.horizon == h and s.covered is not None),
            )
            for h in HORIZONS
        },
        late=len(late),
        late_warned=len(warned),
        late_warned_share=_share(len(warned), len(late)),
        warning_lead_min=_spread(
            [
                _minutes(f.order.window_end - f.warned_at)
                for f in warned
                if f.order.window_end is not None and f.warned_at is not None
            ]
        ),
        late_by_min=_spread([_minutes(f.late_by) for f in late if f.late_by is not None]),
        messages_sent=recipient,
        messages_per_delivery=(round(recipient / len(delivered), 2) if delivered else None),
        messages_per_delivery_by_channel=(
            {c: round(n / len(delivered), 2) for c, n in sorted(by_channel.items())}
            if delivered
            else {}
        ),
        duplicate_messages=sum(f.duplicates for f in rows),
        self_service={kind: self_service[kind] for kind in SELF_SERVICE_KINDS},
        route_count=None if route_list is None else len(route_list),
        distance_km=(
            None if route_list is None else round(sum(r.distance_m for r in route_list) / 1e3, 1)
        ),
        driving_min=(
            None if route_list is None else round(sum(r.driving_s for r in route_list) / 60, 1)
        ),
    )


def all_facts(period: Period) -> list[OrderFacts]:
    """:func:`order_facts` for every order of the period."""
    events: defaultdict[str, list[EventRow]] = defaultdict(list)
    for ev in period.events:
        events[ev.order_id].append(ev)
    messages: defaultdict[str, list[MessageRow]] = defaultdict(list)
    for msg in period.messages:
        messages[msg.order_id].append(msg)
    bounds = period.bounds()
    return [order_facts(o, events[o.id], messages[o.id], bounds) for o in period.orders]


def _groups(
    facts: list[OrderFacts],
    key: Callable[[OrderFacts], tuple[str, str]],
    routes: dict[str, list[RouteRow]] | None,
    extra: dict[str, str] | None = None,
) -> list[Group]:
    """One :class:`Group` per key (facts grouped by ``key``; ``extra`` adds empty groups)."""
    labels: dict[str, str] = dict(extra or {})
    members: defaultdict[str, list[OrderFacts]] = defaultdict(list)
    for f in facts:
        k, label = key(f)
        labels.setdefault(k, label)
        members[k].append(f)
    out = []
    for k, label in labels.items():
        summary = summarise(members[k], None if routes is None else routes.get(k, []))
        out.append(Group(key=k, label=label, **summary.model_dump()))
    return out


def by_day(period: Period, facts: list[OrderFacts]) -> list[Group]:
    """Every local date of the period, in order, empty days included."""
    days = {}
    day = period.start
    while day <= period.end:
        days[day.isoformat()] = day.isoformat()
        day += timedelta(days=1)
    routes: defaultdict[str, list[RouteRow]] = defaultdict(list)
    for r in period.routes:
        routes[r.day.isoformat()].append(r)
    groups = _groups(facts, lambda f: (f.order.day.isoformat(),) * 2, routes, days)
    return sorted(groups, key=lambda g: g.key)


def by_driver(period: Period, facts: list[OrderFacts]) -> list[Group]:
    """Each driver with orders or routes in the period, by name; unassigned orders last."""
    routes: defaultdict[str, list[RouteRow]] = defaultdict(list)
    names = {}
    for r in period.routes:
        routes[r.driver_id].append(r)
        names[r.driver_id] = r.driver_name
    groups = _groups(facts, lambda f: (f.order.driver_id, f.order.driver_name), routes, names)
    return sorted(groups, key=lambda g: (g.key == "unassigned", g.label.casefold(), g.key))


def by_zone(facts: list[OrderFacts]) -> list[Group]:
    """Each service zone with orders, by name; orders outside every zone last."""
    groups = _groups(facts, lambda f: (f.order.zone_id, f.order.zone_name), None)
    return sorted(groups, key=lambda g: (g.key == "no-zone", g.label.casefold(), g.key))


def route_kpis(routes: Iterable[RouteRow]) -> list[RouteKpi]:
    return [
        RouteKpi(
            id=r.id,
            day=r.day,
            driver_id=r.driver_id,
            driver_name=r.driver_name,
            status=r.status,
            stops=r.stops,
            distance_km=round(r.distance_m / 1e3, 2),
            driving_min=round(r.driving_s / 60, 1),
        )
        for r in sorted(routes, key=lambda r: (r.day, r.driver_name.casefold(), r.id))
    ]
