"""The KPI functions on hand-built event logs: each figure, and the edge cases a day throws up
(nothing delivered, a failed attempt then a delivery, late deliveries warned or not, ETA
events at each horizon, messages repeated within and across attempts)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from doorstep.domain.analytics.kpis import (
    all_facts,
    by_day,
    by_driver,
    by_zone,
    order_facts,
    percentile,
    summarise,
)
from doorstep.domain.analytics.rows import EventRow, MessageRow, OrderRow, Period, RouteRow
from doorstep.domain.analytics.service import report_of

DAY = date(2026, 11, 25)
W0 = datetime(2026, 11, 25, 13, 0, tzinfo=UTC)  # 14:00-16:00 in Monaco
W1 = W0 + timedelta(hours=2)


def at(minutes: float) -> datetime:
    """``minutes`` after the window opens (negative: before)."""
    return W0 + timedelta(minutes=minutes)


def order(order_id: str, **kw: Any) -> OrderRow:
    return OrderRow(
        id=order_id,
        status=kw.pop("status", "delivered"),
        window_start=kw.pop("window_start", W0),
        window_end=kw.pop("window_end", W1),
        day=kw.pop("day", DAY),
        **kw,
    )


class Log:
    """Events of one order, numbered in the order they are added."""

    def __init__(self, order_id: str) -> None:
        self.order_id = order_id
        self.events: list[EventRow] = []

    def add(self, type_: str, when: datetime, **data: Any) -> Log:
        self.events.append(EventRow(len(self.events) + 1, self.order_id, type_, when, data))
        return self

    def eta(self, when: datetime, eta: datetime, stops_before: int, spread: int = 10) -> Log:
        return self.add(
            "delivery.eta_updated",
            when,
            eta=eta.isoformat(),
            earliest=(eta - timedelta(minutes=spread)).isoformat(),
            latest=(eta + timedelta(minutes=spread)).isoformat(),
            stops_before=stops_before,
            minutes_away=30,
            confidence=0.8,
        )


def sent(order_id: str, topic: str, when: datetime, **kw: Any) -> MessageRow:
    return MessageRow(
        order_id=order_id,
        channel=kw.get("channel", "sms"),
        topic=topic,
        target=kw.get("target", "+33612345678"),
        status=kw.get("status", "sent"),
        created_at=when,
        event_id=kw.get("event_id"),
    )


def test_no_deliveries_gives_counts_and_null_rates() -> None:
    """With orders but nothing delivered, counts are zero and every rate is null, not 0 or 1."""
    facts = [order_facts(order("a", status="scheduled"), [], [])]
    s = summarise(facts)
    assert (s.orders, s.delivered, s.late) == (1, 0, 0)
    assert s.on_time_rate is None and s.first_attempt_rate is None
    assert s.late_warned_share is None and s.messages_per_delivery is None
    assert s.eta_abs_error_min["1_stop"].n == 0 and s.eta_abs_error_min["1_stop"].median is None
    assert s.eta_window_coverage == {"route_start": None, "5_stops": None, "1_stop": None}
    empty = summarise([])
    assert empty.orders == 0 and empty.on_time_rate is None


def test_on_time_means_delivered_inside_the_promised_window() -> None:
    """On time, early and late deliveries are told apart at the window's edges; an order
    without a window is delivered but not measured."""
    logs = {
        "edge": Log("edge").add("delivery.delivered", W1),  # exactly at the end: on time
        "early": Log("early").add("delivery.delivered", at(-5)),
        "late": Log("late").add("delivery.delivered", at(121)),
        "nowin": Log("nowin").add("delivery.delivered", at(500)),
    }
    facts = [
        order_facts(
            order(k, **({"window_start": None, "window_end": None} if k == "nowin" else {})),
            log.events,
            [],
        )
        for k, log in logs.items()
    ]
    s = summarise(facts)
    assert s.delivered == 4 and s.on_time == 1
    assert s.on_time_rate == pytest.approx(1 / 3, abs=1e-4)
    assert s.late == 1 and s.late_by_min.median == pytest.approx(1.0)


def test_on_time_is_judged_at_the_door_not_at_the_signature() -> None:
    """A driver who rang 12 s before the window closed and was signed for 4 minutes later was on
    time; one who rang after the end was late by the ring, not the signature; a failed attempt's
    arrival never stands for the later delivery's."""
    rang_in_time = (
        Log("d")
        .add("stop.arrived", W1 - timedelta(seconds=12))
        .add("delivery.delivered", W1 + timedelta(minutes=4))
    )
    rang_late = Log("l").add("stop.arrived", at(125)).add("delivery.delivered", at(129))
    second_try = (
        Log("f")
        .add("stop.arrived", at(10))
        .add("delivery.failed", at(12))
        .add("delivery.delivered", at(130))  # no arrival recorded: the delivery's own time
    )
    s = summarise(
        [
            order_facts(order(log.order_id), log.events, [])
            for log in (rang_in_time, rang_late, second_try)
        ]
    )
    assert (s.delivered, s.on_time, s.late) == (3, 1, 2)
    assert s.late_by_min.median == pytest.approx(7.5)  # 5 and 10 minutes late


def test_a_failed_attempt_then_a_delivery_is_not_a_first_attempt() -> None:
    """An order delivered after a failed attempt counts as delivered but not first-attempt;
    the failed attempt is counted; a straight delivery is first-attempt."""
    retried = (
        Log("r")
        .add("delivery.out_for_delivery", at(-60))
        .add("delivery.failed", at(10))
        .add("order.rescheduled", at(30), window_start=W0.isoformat(), by="recipient")
        .add("delivery.out_for_delivery", at(60))
        .add("delivery.delivered", at(90))
    )
    straight = Log("s").add("delivery.delivered", at(20))
    s = summarise(
        [
            order_facts(order("r"), retried.events, []),
            order_facts(order("s"), straight.events, []),
        ]
    )
    assert (s.delivered, s.first_attempt, s.failed_attempts) == (2, 1, 1)
    assert s.first_attempt_rate == 0.5
    assert s.self_service["rescheduled"] == 1


def test_late_deliveries_warned_only_when_the_alert_came_before_the_window_ended() -> None:
    """Of three late deliveries, one warned 30 minutes before the window's end counts as
    warned; one warned after the end and one never warned do not."""
    warned = Log("w").add("delivery.delayed", at(90)).add("delivery.delivered", at(140))
    too_late = Log("t").add("delivery.delayed", at(125)).add("delivery.delivered", at(150))
    silent = Log("n").add("delivery.delivered", at(130))
    on_time_warned = Log("o").add("delivery.delayed", at(10)).add("delivery.delivered", at(60))
    s = summarise(
        [
            order_facts(order(log.order_id), log.events, [])
            for log in (warned, too_late, silent, on_time_warned)
        ]
    )
    assert (s.late, s.late_warned) == (3, 1)
    assert s.late_warned_share == pytest.approx(1 / 3, abs=1e-4)
    assert s.warning_lead_min.n == 1 and s.warning_lead_min.median == pytest.approx(30.0)
    assert s.late_by_min.median == pytest.approx(20.0)  # 20, 30 and 10 minutes late


def test_eta_error_and_coverage_per_horizon() -> None:
    """The route-start ETA is the first after out-for-delivery, the 5-stop one the first at
    <= 5 stops, the 1-stop one the first at <= 1; errors are against the stop.arrived time and
    coverage says whether that time fell inside the shown window."""
    arrival = at(60)
    log = (
        Log("e")
        .eta(at(-300), at(0), 12)  # before the route started: ignored for route_start
        .add("delivery.out_for_delivery", at(-180))
        .eta(at(-170), arrival + timedelta(minutes=40), 9, spread=15)  # route start: 40 off
        .eta(at(-90), arrival + timedelta(minutes=12), 6)
        .eta(at(-60), arrival - timedelta(minutes=8), 4, spread=10)  # 5 stops: 8 off, covered
        .eta(at(-30), arrival + timedelta(minutes=3), 2)
        .eta(at(-10), arrival + timedelta(minutes=2), 1, spread=1)  # 1 stop: 2 off, missed
        .eta(at(-2), arrival, 0)
        .add("stop.arrived", arrival, stop_id="stp_1")
        .add("delivery.delivered", at(64))
    )
    facts = order_facts(order("e"), log.events, [])
    errors = {s.horizon: (round(s.error_min, 3), s.covered) for s in facts.eta}
    assert errors == {"route_start": (40.0, False), "5_stops": (8.0, True), "1_stop": (2.0, False)}
    s = summarise([facts])
    assert s.eta_abs_error_min["5_stops"].median == 8.0
    assert s.eta_window_coverage == {"route_start": 0.0, "5_stops": 1.0, "1_stop": 0.0}


def test_the_eta_event_stating_the_arrival_is_not_a_second_prediction() -> None:
    """The engine announces the arrival itself (a zero-width "window" at the door) between
    stop.arrived and the completion: the visit is judged once, at its arrival, so a window
    that covered the arrival is not counted again as a miss against the signature."""
    arrival = at(60)
    log = (
        Log("g")
        .add("delivery.out_for_delivery", at(-180))
        .eta(at(-170), arrival + timedelta(minutes=5), 9)
        .eta(at(-30), arrival + timedelta(minutes=2), 1)
        .add("stop.arrived", arrival, stop_id="stp_1")
        .eta(arrival, arrival, 0, spread=0)
        .add("delivery.delivered", at(64))
    )
    facts = order_facts(order("g"), log.events, [])
    assert sorted((s.horizon, round(s.error_min, 3), s.covered) for s in facts.eta) == [
        ("1_stop", 2.0, True),
        ("5_stops", 2.0, True),
        ("route_start", 5.0, True),
    ]
    assert summarise([facts]).eta_window_coverage == {
        "route_start": 1.0,
        "5_stops": 1.0,
        "1_stop": 1.0,
    }


def test_eta_of_a_failed_attempt_is_judged_against_that_attempt() -> None:
    """ETAs before a failed attempt are compared with the failed attempt's arrival, those of
    the second attempt with the delivery; malformed ETA data is skipped, not fatal."""
    log = (
        Log("f")
        .eta(at(-20), at(0), 1)
        .add("delivery.failed", at(5))
        .add("delivery.eta_updated", at(20), eta="not a time", stops_before=1)
        .eta(at(30), at(100), 1)
        .add("delivery.delivered", at(110))
    )
    facts = order_facts(order("f"), log.events, [])
    assert sorted(round(s.error_min, 3) for s in facts.eta if s.horizon == "1_stop") == [5, 10]


def test_messages_per_delivery_and_duplicates() -> None:
    """Sent recipient messages are counted per delivered order by channel (webhooks apart);
    the same trigger, channel and address twice in one attempt is a duplicate, but not after a
    failed attempt, nor to another address, nor when the first send failed."""
    log = (
        Log("m")
        .add("delivery.out_for_delivery", at(-60))
        .add("delivery.failed", at(0))
        .add("delivery.out_for_delivery", at(30))
        .add("delivery.delivered", at(60))
    )
    messages = [
        sent("m", "delivery.out_for_delivery", at(-60)),
        sent("m", "delivery.out_for_delivery", at(-59)),  # duplicate
        sent("m", "delivery.out_for_delivery", at(-60), channel="email", target="a@example.com"),
        sent("m", "delivery.failed", at(0)),
        sent("m", "delivery.out_for_delivery", at(30)),  # a new attempt: not a duplicate
        sent("m", "delivery.delivered", at(60), channel="webhook", target="wh_1"),
        sent("m", "delivery.delivered", at(60), channel="webhook", target="wh_2"),
        sent("m", "delivery.delivered", at(61), status="failed"),
        sent("m", "delivery.delivered", at(62)),
    ]
    s = summarise([order_facts(order("m"), log.events, messages)])
    assert s.duplicate_messages == 1
    assert s.messages_sent == 6  # sms x5 + email, webhooks apart
    assert s.messages_per_delivery == 6.0
    assert s.messages_per_delivery_by_channel == {"email": 1.0, "sms": 5.0, "webhook": 2.0}


def test_self_service_changes_are_counted_by_kind() -> None:
    """Reschedules, redirects, holds and instruction changes are each counted."""
    log = (
        Log("x")
        .add("order.redirected", at(-300), kind="neighbour", detail="No. 12")
        .add("order.instructions_changed", at(-290))
        .add("order.instructions_changed", at(-280))
        .add("order.held", at(-200), until="2026-11-26")
    )
    s = summarise([order_facts(order("x", status="on_hold"), log.events, [])])
    assert s.self_service == {
        "rescheduled": 0,
        "redirected": 1,
        "held": 1,
        "instructions_changed": 2,
    }


def test_percentile_interpolates_between_ranks() -> None:
    """Median and p90 interpolate linearly; one value is its own percentile; none is None."""
    assert percentile([1, 2, 3, 4], 0.5) == 2.5
    assert percentile([0, 10], 0.9) == pytest.approx(9.0)
    assert percentile([7], 0.9) == 7
    assert percentile([], 0.5) is None


def test_groups_by_day_driver_and_zone_with_routes() -> None:
    """Every day of the period has a group (empty ones too); drivers carry their routes'
    distance and driving time; orders outside every zone come last under "No zone"."""
    tomorrow = DAY + timedelta(days=1)
    orders = [
        order("a", driver_id="drv_b", driver_name="Bea", zone_id="zon_1", zone_name="Centre"),
        order("b", driver_id="drv_a", driver_name="Ann", zone_id="zon_1", zone_name="Centre"),
        order("c", day=tomorrow),
    ]
    events = [
        EventRow(1, "a", "delivery.delivered", at(30)),
        EventRow(2, "b", "delivery.delivered", at(200)),
    ]
    routes = [
        RouteRow("rte_1", DAY, "drv_a", "Ann", "done", 12, 15_500.0, 3_000.0),
        RouteRow("rte_2", DAY, "drv_b", "Bea", "done", 9, 8_000.0, 1_800.0),
    ]
    period = Period(DAY, DAY + timedelta(days=2), "Europe/Monaco", orders, events, [], routes)
    facts = all_facts(period)
    days = by_day(period, facts)
    assert [(g.key, g.orders, g.delivered) for g in days] == [
        ("2026-11-25", 2, 2),
        ("2026-11-26", 1, 0),
        ("2026-11-27", 0, 0),
    ]
    assert days[0].distance_km == 23.5 and days[1].route_count == 0
    drivers = by_driver(period, facts)
    assert [(g.label, g.on_time_rate, g.distance_km, g.driving_min) for g in drivers] == [
        ("Ann", 0.0, 15.5, 50.0),
        ("Bea", 1.0, 8.0, 30.0),
        ("Unassigned", None, 0.0, 0.0),
    ]
    zones = by_zone(facts)
    assert [(g.label, g.orders, g.route_count) for g in zones] == [
        ("Centre", 2, None),
        ("No zone", 1, None),
    ]
    report = report_of(period, at(600))
    assert report.orders == 3 and report.on_time_rate == 0.5
    assert [r.id for r in report.routes] == ["rte_1", "rte_2"]
    assert report.model_dump(by_alias=True)["from"] == DAY


def test_each_webhook_event_is_news_but_the_same_event_twice_is_a_duplicate() -> None:
    """Two ETA updates are two webhooks, not one sent twice; a webhook that carries an event
    already sent (a replay that went out again) counts as a duplicate."""
    hook = {"channel": "webhook", "target": "whe_1"}
    messages = [
        sent("a", "delivery.eta_updated", at(0), event_id="evt_1", **hook),
        sent("a", "delivery.eta_updated", at(5), event_id="evt_2", **hook),
        sent("a", "delivery.eta_updated", at(9), event_id="evt_2", **hook),
    ]
    facts = order_facts(order("a", status="out_for_delivery"), [], messages)
    assert summarise([facts]).duplicate_messages == 1
