"""The ETA benchmark's days: a depot in Monaco, vans on staggered shifts, and each van's route
of orders (two-hour windows around the planned arrival), written as a published plan would
leave them: plan, routes and stops with planned times from the road network.

Rows are written directly (not through the HTTP API) because the benchmark measures the ETA
engine, not order intake or the optimiser; the stop order is nearest-neighbour on the road
durations, which is what a dispatcher would accept for a dozen stops.
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from doorstep.bench.fleet import crew_on_route, published_plan
from doorstep.domain.dispatch.models import Stop
from doorstep.domain.orders.models import Order
from doorstep.ids import new_id
from doorstep.routing.travel.base import UNREACHABLE, LatLon, Profile, TravelTimeProvider

MONACO = ZoneInfo("Europe/Monaco")
DEPOT = LatLon(43.7311, 7.4197)  # Fontvieille
AREA = ((43.7260, 43.7500), (7.4080, 7.4380))  # Monaco and Beausoleil
SERVICE_S = 180


@dataclass(frozen=True)
class PlannedStop:
    stop_id: str
    order_id: str
    point: LatLon
    service_s: int
    planned_arrival: datetime
    window_start: datetime
    window_end: datetime


@dataclass(frozen=True)
class PlannedRoute:
    route_id: str
    driver_id: str
    start_at: datetime
    stops: list[PlannedStop]


def _order(
    merchant_id: str, reference: str, point: LatLon, window: tuple[datetime, datetime], at: datetime
) -> Order:
    return Order(
        id=new_id("ord", at),
        merchant_id=merchant_id,
        reference=reference,
        status="scheduled",
        service_level="scheduled",
        recipient_name=f"Recipient {reference}",
        address_line1="1 Avenue de la Costa",
        city="Monaco",
        postal_code="98000",
        country="MC",
        lat=point.lat,
        lon=point.lon,
        window_start=window[0],
        window_end=window[1],
        window_sequence=0,
        service_time_s=SERVICE_S,
        required_skills=[],
        parcel_count=1,
        weight_kg=2.0,
        tracking_token_hash=secrets.token_hex(32),
        tracking_nonce=secrets.token_hex(8),
        attempts=0,
        version=1,
        created_at=at,
        updated_at=at,
    )


def _nearest_neighbour(durations: list[list[int]], n: int) -> list[int]:
    """Visit order of points 1..n from point 0, always to the closest unvisited point."""
    order: list[int] = []
    left = set(range(1, n + 1))
    here = 0
    while left:
        here = min(left, key=lambda j: (durations[here][j], j))
        order.append(here)
        left.remove(here)
    return order


def build_day(
    session: Session,
    merchant_id: str,
    day: date,
    travel: TravelTimeProvider,
    *,
    routes: int,
    stops: int,
    seed: int,
) -> list[PlannedRoute]:
    """One day of ``routes`` published routes of ``stops`` stops each, starting 07:30, 08:00,
    08:30... local time (the first ones into the morning rush hour)."""
    rng = random.Random(seed)
    created = datetime.combine(day - timedelta(days=1), time(18), MONACO)
    plan = published_plan(
        session,
        merchant_id,
        day=day,
        at=created,
        depot_at=(DEPOT.lat, DEPOT.lon),
        travel_provider=travel.name,
        seed=seed,
    )
    out: list[PlannedRoute] = []
    for r in range(routes):
        start_at = datetime.combine(day, time(7, 30), MONACO) + timedelta(minutes=30 * r)
        route, _device = crew_on_route(
            session, plan, r, at=created, shift=(start_at, start_at + timedelta(hours=9)),
            started=False,
        )  # fmt: skip
        points = [
            LatLon(round(rng.uniform(*AREA[0]), 5), round(rng.uniform(*AREA[1]), 5))
            for _ in range(stops)
        ]
        matrix = travel.matrix([DEPOT, *points], Profile.VAN)
        durations = [[int(x) for x in row] for row in matrix.durations_s]
        visit = _nearest_neighbour(durations, stops)
        planned: list[PlannedStop] = []
        t, here = start_at, 0
        for seq, j in enumerate(visit):
            leg = durations[here][j]
            t += timedelta(seconds=leg if leg < UNREACHABLE else 600)
            # A two-hour slot the shop sold, around the time the plan says the van comes; two
            # in seven end within half an hour of it, so a slow day makes some deliveries late.
            slot_start = t - timedelta(minutes=rng.choice([15, 30, 45, 60, 75, 90, 105]))
            slot_start = slot_start.replace(minute=(slot_start.minute // 15) * 15, second=0)
            slot_start = slot_start.replace(microsecond=0)
            window = (slot_start, slot_start + timedelta(hours=2))
            order = _order(
                merchant_id, f"B{day:%m%d}-{r + 1}-{seq + 1:02d}", points[j - 1], window, created
            )
            stop = Stop(
                id=new_id("stp", created),
                merchant_id=merchant_id,
                route_id=route.id,
                order_id=order.id,
                sequence=seq + 1,
                status="planned",
                planned_arrival=t,
                planned_departure=t + timedelta(seconds=SERVICE_S),
                service_time_s=SERVICE_S,
            )
            session.add(order)
            session.flush()
            session.add(stop)
            planned.append(
                PlannedStop(stop.id, order.id, points[j - 1], SERVICE_S, t, window[0], window[1])
            )
            t += timedelta(seconds=SERVICE_S)
            here = j
        out.append(PlannedRoute(route.id, route.driver_id, start_at, planned))
    session.flush()
    return out
