"""A small delivery day written straight into the database for the analytics tests: a depot,
a Monaco zone, two drivers on a published plan, and orders whose event logs (through
``change_status``/``append_event``) and outbox messages say how each delivery went.

On 2026-11-25 (Monaco time), windows 14:00-16:00:

* ``A`` (Monaco, Ann): ETAs at 6 and 1 stops away, arrives 14:30, delivered on time;
  an SMS when out for delivery and one when delivered.
* ``B`` (Monaco, Bea): fails at 14:10, a delay alert at 15:30, delivered late at 16:20.
* ``C`` (Nice: outside every zone, Ann): delivered late at 16:40 without warning; the
  out-for-delivery SMS was sent twice (one duplicate).
* ``D`` (Monaco, Bea): scheduled, not delivered yet.
* ``E``: windowed the next day, so outside a one-day period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from doorstep.clock import Clock
from doorstep.db.engine import transaction
from doorstep.domain.dispatch.models import Plan, Route, Stop
from doorstep.domain.errors import Actor
from doorstep.domain.notifications.models import OutboxMessage
from doorstep.domain.orders.events import append_event, change_status
from doorstep.domain.orders.models import Order
from doorstep.domain.orders.status import Reason, Status
from doorstep.domain.slots.models import ServiceZone
from doorstep.ids import new_id
from doorstep.runtime import Runtime
from tests.factories import T0, local, make_depot, make_driver, make_order, make_shift, make_vehicle
from tests.slots_setup import IN_MONACO, IN_NICE, MONACO_RING

DAY = date(2026, 11, 25)
SYSTEM = Actor.system()


@dataclass
class Scene:
    orders: dict[str, str]  # letter -> order id
    drivers: dict[str, str]  # name -> driver id
    zone_id: str


def _status(s: Session, clock: Clock, o: Order, target: Status, when: datetime, **kw: Any) -> None:
    change_status(s, clock, o, target, actor=SYSTEM, occurred_at=when, **kw)
    s.flush()


def _event(s: Session, clock: Clock, o: Order, type_: str, when: datetime, **data: Any) -> None:
    append_event(
        s, clock, merchant_id=o.merchant_id, type=type_, actor=SYSTEM, order=o,
        data=data, occurred_at=when,
    )  # fmt: skip
    s.flush()


def _eta(s: Session, clock: Clock, o: Order, when: datetime, eta: datetime, stops: int) -> None:
    _event(
        s, clock, o, "delivery.eta_updated", when,
        eta=eta.isoformat(), earliest=(eta - timedelta(minutes=10)).isoformat(),
        latest=(eta + timedelta(minutes=10)).isoformat(), confidence=0.8,
        stops_before=stops, minutes_away=int((eta - when).total_seconds() // 60),
        reason="position", previous_eta=None,
    )  # fmt: skip


def _sms(s: Session, o: Order, topic: str, when: datetime, status: str = "sent") -> None:
    s.add(
        OutboxMessage(
            public_id=new_id("msg", when), merchant_id=o.merchant_id, channel="sms",
            topic=topic, order_id=o.id, target=o.recipient_phone or "", payload={},
            status=status, attempts=1, next_attempt_at=when, created_at=when,
            sent_at=when if status == "sent" else None,
        )
    )  # fmt: skip
    s.flush()


def build_day(runtime: Runtime, merchant_id: str) -> Scene:
    """The day described in the module notes, for ``merchant_id`` (Europe/Monaco)."""
    clock = runtime.clock
    with transaction(runtime.sessions) as s:
        depot = make_depot(s, merchant_id)
        xs, ys = [p[0] for p in MONACO_RING], [p[1] for p in MONACO_RING]
        zone = ServiceZone(
            id=new_id("zon", T0), merchant_id=merchant_id, depot_id=depot.id, name="Monaco",
            geometry={"type": "Polygon", "coordinates": [MONACO_RING]},
            bbox=[min(xs), min(ys), max(xs), max(ys)], active=True, created_at=T0, updated_at=T0,
        )  # fmt: skip
        s.add(zone)
        plan = Plan(
            id=new_id("pln", T0), merchant_id=merchant_id, depot_id=depot.id, date=DAY,
            status="published", seed=1, time_limit_s=1.0, travel_provider="haversine",
            created_at=T0, published_at=T0,
        )  # fmt: skip
        s.add(plan)
        drivers, routes = {}, {}
        for i, (name, km, minutes) in enumerate([("Ann", 21.5, 64), ("Bea", 12.0, 40)]):
            vehicle = make_vehicle(s, merchant_id, name=f"Van {name}")
            driver = make_driver(s, merchant_id, name=name)
            shift = make_shift(
                s, merchant_id, driver=driver, vehicle=vehicle, depot=depot,
                start_at=local(DAY, 13), end_at=local(DAY, 19),
            )  # fmt: skip
            route = Route(
                id=new_id("rte", T0), merchant_id=merchant_id, plan_id=plan.id,
                shift_id=shift.id, driver_id=driver.id, vehicle_id=vehicle.id, position=i,
                status="done", start_at=local(DAY, 13), end_at=local(DAY, 18),
                distance_m=km * 1000, driving_s=minutes * 60.0,
            )  # fmt: skip
            s.add(route)
            drivers[name], routes[name] = driver.id, route
        s.flush()
        window = (local(DAY, 14), local(DAY, 16))
        spots = {"A": IN_MONACO, "B": IN_MONACO, "C": IN_NICE, "D": IN_MONACO, "E": IN_MONACO}
        who = {"A": "Ann", "B": "Bea", "C": "Ann", "D": "Bea"}
        orders: dict[str, Order] = {}
        for n, (letter, spot) in enumerate(spots.items()):
            w = window if letter != "E" else (local(DAY, 14) + timedelta(days=1),) * 2
            o = make_order(
                s, merchant_id, reference=f"AN-{letter}", lat=spot["lat"], lon=spot["lon"],
                window=w, status="pending",
            )  # fmt: skip
            orders[letter] = o
            _status(s, clock, o, Status.SCHEDULED, local(DAY, 8))
            if letter in who:
                arrived = {"A": local(DAY, 14, 30), "B": local(DAY, 16, 20)}.get(letter)
                s.add(
                    Stop(
                        id=new_id("stp", T0), merchant_id=merchant_id,
                        route_id=routes[who[letter]].id, order_id=o.id, sequence=n + 1,
                        status="done" if arrived else "planned", actual_arrival=arrived,
                    )
                )  # fmt: skip
        s.flush()
        a, b, c = orders["A"], orders["B"], orders["C"]
        for o in (a, b, c):
            _status(s, clock, o, Status.PICKED_UP, local(DAY, 13))
            _status(s, clock, o, Status.OUT_FOR_DELIVERY, local(DAY, 13, 5))
        # A: ETAs 12 and 2 minutes off, then on time.
        _sms(s, a, "delivery.out_for_delivery", local(DAY, 13, 5))
        _eta(s, clock, a, local(DAY, 13, 30), local(DAY, 14, 42), 6)
        _eta(s, clock, a, local(DAY, 14, 15), local(DAY, 14, 28), 1)
        _event(s, clock, a, "stop.arrived", local(DAY, 14, 30), stop_id="stp_a")
        _status(s, clock, a, Status.DELIVERED, local(DAY, 14, 33))
        _sms(s, a, "delivery.delivered", local(DAY, 14, 33))
        # B: a failed attempt, a warned delay, delivered late.
        _status(
            s, clock, b, Status.DELIVERY_FAILED, local(DAY, 14, 10),
            reason=Reason.CONSIGNEE_NOT_HOME,
        )  # fmt: skip
        _status(s, clock, b, Status.OUT_FOR_DELIVERY, local(DAY, 15))
        _status(s, clock, b, Status.DELIVERY_DELAYED, local(DAY, 15, 30))
        _status(s, clock, b, Status.DELIVERED, local(DAY, 16, 20))
        # C: late and never warned; its out-for-delivery SMS went twice.
        _sms(s, c, "delivery.out_for_delivery", local(DAY, 13, 5))
        _sms(s, c, "delivery.out_for_delivery", local(DAY, 13, 6))
        _status(s, clock, c, Status.DELIVERED, local(DAY, 16, 40))
        _event(s, clock, orders["D"], "order.instructions_changed", local(DAY, 9))
        ids = {k: o.id for k, o in orders.items()}
        return Scene(ids, drivers, zone.id)
