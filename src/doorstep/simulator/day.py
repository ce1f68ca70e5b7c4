"""A simulated delivery day that drives Doorstep only through its public interfaces.

:class:`DaySimulation` plays a shop's checkout (quote, reserve, create), a dispatcher (plan,
publish, re-plan), the drivers (start, OsmAnd fixes along road paths, arrive, complete with a
photo and a signature, fail when nobody is home) and the recipients (reschedule, add
instructions and rebook on the tracking page's forms) against a Doorstep reached by ``http``.
The only direct call is the merchant's creation (there is no public sign-up), as ``doorstep
merchant create`` does; :meth:`DaySimulation.progress` reads Doorstep's database for a display.

Time: everything happens at simulated instants on ``runtime.clock``. :meth:`setup` moves the
clock back to each booking time (``clock.set``); afterwards the day is a queue of actions, and
:meth:`advance` performs those due. :func:`run_fast` steps a frozen clock from one action to
the next and runs the worker's jobs inline in a fixed order (deterministic); ``doorstep demo``
lets a :class:`~doorstep.clock.SimulatedClock` run and the worker run in its own thread.

The day (times local to the city):

* the evening before, the dispatcher plans and publishes the day (PyVRP, seeded, with an
  iteration limit so the plan does not depend on the machine's speed);
* 06:00-09:30 same-day orders arrive (cut-off 10:00); 06:30-07:45 some recipients reschedule
  to a later window of the day, add instructions, send the parcel to a neighbour or a safe
  place, or hold it while they are away, on their tracking page; 10:15 the
  dispatcher re-plans from where things stand and publishes (inserting same-day and moved
  orders);
* each driver works a morning shift (08:00-13:00) and an afternoon shift (13:30-18:30), vans
  and cargo bikes; windows 09-11, 11-13, 14-16, 16-18;
* 11:30-13:30 an incident slows the roads around the city's middle (a delay alert fires for
  the stops it makes late);
* a recipient not at home gets a failed attempt and rebooks another day on the tracking page.

A live day (the demo): build the server's settings with :func:`simulation_settings` (road
travel times over the city's extract, webhooks to 127.0.0.1 allowed) and ``smtp_url`` from the
:class:`~doorstep.simulator.sinks.Sinks`, serve with the worker on a ``SimulatedClock``, call
:meth:`DaySimulation.setup` once, then :meth:`DaySimulation.advance` with ``clock.now()``
every ~100 ms from one thread (``tests/integration/test_simulated_day.py`` does it in-process).
"""

from __future__ import annotations

import hashlib
import heapq
import html
import io
import itertools
import logging
import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx

from doorstep.routing.travel.base import LatLon, Profile, TravelTimeProvider
from doorstep.runtime import Runtime
from doorstep.simulator.city import City, StreetPoint, box_ring, city_for, inside, street_points
from doorstep.simulator.demand import Booking, Change, OrderSpec, draw_orders
from doorstep.simulator.driving import DrivingModel, Fix, StopSpec, drive_route
from doorstep.simulator.sinks import Sinks

if TYPE_CHECKING:
    from doorstep.domain.analytics.schemas import KpiReport
    from doorstep.settings import Settings

__all__ = [
    "DayConfig",
    "DaySimulation",
    "Progress",
    "Scenario",
    "SimulationError",
    "run_fast",
    "simulation_settings",
]

log = logging.getLogger("doorstep.simulator")

MORNING = (time(8, 0), time(13, 0))
AFTERNOON = (time(13, 30), time(18, 30))
WINDOWS = (("09:00", "11:00"), ("11:00", "13:00"), ("14:00", "16:00"), ("16:00", "18:00"))
EVERY_DAY = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
PLAN_AT = time(21, 30)  # the evening before
REPLAN_AT = time(10, 15)
SAME_DAY_CUTOFF = "10:00"
SLOWDOWN = (time(11, 30), time(13, 30), 1.9, 900.0)  # from, to, factor, radius (m)
SERVICE_S = 180.0
NEIGHBOURS = ("Mme Curie", "M. Rossi", "Mme Laine", "M. Dubois", "Mme Bianchi", "M. Hopper")
SAFE_PLACES = (
    "Behind the blue gate",
    "In the porch, under the bench",
    "With the concierge on the ground floor",
    "In the garden shed, left of the door",
)
KNOTS_PER_MPS = 1.943844
PLAN_ITERATIONS = 1500
# The shop's checkout: passes through quote, reserve and order when a hold lapses in between.
CHECKOUT_TRIES = 3
RESERVATION_GONE = "reservation-gone"  # the problem type's slug (slots.reservations)
PLAN_TIME_LIMIT_S = 300.0


class SimulationError(RuntimeError):
    """Doorstep refused something the simulated day needs (the answer is in the message)."""


@dataclass(frozen=True)
class DayConfig:
    orders: int = 300
    drivers: int = 10
    seed: int = 7
    city: str = "monaco"  # "monaco" | "helsinki"
    osm: Path | None = None  # any other extract
    day: date | None = None  # default: today's date in the city's timezone
    position_interval_s: int = 10  # simulated seconds between a driver's OsmAnd fixes
    timezone: str | None = None  # an --osm extract's timezone (default UTC)
    upload_interval_s: int = 30  # simulated seconds between a phone's uploads of its fixes


@dataclass(frozen=True)
class Scenario:
    merchant_id: str
    api_key: str
    day: date
    timezone: str
    depot_id: str
    driver_ids: list[str]
    order_ids: list[str]  # the day's orders booked ahead, in booking order
    tracking_urls: dict[str, str]  # order_id -> tracking URL as the API returned it
    starts_at: datetime  # when the simulated day's action begins (UTC)
    ends_at: datetime  # latest shift end (UTC)
    weekend_order_ids: list[str] = field(default_factory=list)
    city: str = ""
    attribution: str = ""


@dataclass(frozen=True)
class Progress:
    now: datetime
    orders: int
    delivered: int
    late: int
    failed: int
    messages_sent: int
    out_for_delivery: int


@dataclass(order=True)
class _Action:
    at: datetime
    seq: int
    name: str = field(compare=False)
    run: Callable[[], None] = field(compare=False, repr=False)


@dataclass
class _Shift:
    id: str
    start: datetime
    end: datetime
    started: bool = False


@dataclass
class _Driver:
    index: int
    id: str
    name: str
    device_id: str
    profile: Profile
    vehicle_id: str
    shifts: list[_Shift] = field(default_factory=list)
    at: LatLon | None = None
    legs: int = 0
    busy: bool = False  # on a leg or at a stop (an action of theirs is queued)
    waiting_shift: int | None = None  # a shift that began while the previous one ran over
    route_id: str | None = None


@dataclass
class _Order:
    spec: OrderSpec
    id: str = ""
    tracking_path: str = ""
    tracking_url: str = ""
    attempts: int = 0


def _local(day: date, at: time, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, at, tz).astimezone(UTC)


def _photo(seed: str) -> bytes:
    """A small JPEG of 'the parcel at the door' (a seeded colour and a box)."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    img = Image.new("RGB", (96, 72), (rng.randint(80, 220), rng.randint(80, 220), 200))
    draw = ImageDraw.Draw(img)
    draw.rectangle((30, 24, 66, 56), fill=(160, 110, 60), outline=(60, 40, 20))
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=70)
    return out.getvalue()


def _signature(seed: str) -> bytes:
    """A drawn signature: a seeded scribble on a transparent canvas (PNG)."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    img = Image.new("RGBA", (160, 60), (255, 255, 255, 0))
    draw = ImageDraw.Draw(img)
    points = [(10 + i * 14, 30 + rng.randint(-18, 18)) for i in range(11)]
    draw.line(points, fill=(20, 20, 90, 255), width=2)
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


_FORM_TOKEN = re.compile(r'name="form_token" value="([^"]+)"')
_WINDOW_VALUE = re.compile(r'name="window" value="([^"]+)"')
_ERROR_TEXT = re.compile(r'class="track-error"[^>]*>(.*?)</div>', re.S)


def _meters(a: LatLon, b: LatLon) -> float:
    dy = (a.lat - b.lat) * 111_320.0
    dx = (a.lon - b.lon) * 111_320.0 * math.cos(math.radians(a.lat))
    return math.hypot(dx, dy)


class DaySimulation:
    """One simulated day against the Doorstep behind ``http`` (see the module's text)."""

    def __init__(
        self, config: DayConfig, runtime: Runtime, http: httpx.Client, sinks: Sinks
    ) -> None:
        self.config = config
        self.runtime = runtime
        self.http = http
        self.sinks = sinks
        self.city: City = city_for(config.city, config.osm, config.timezone)
        self.tz = ZoneInfo(self.city.timezone)
        self.day: date = config.day or runtime.clock.now().astimezone(self.tz).date()
        self._queue: list[_Action] = []
        self._seq = itertools.count()
        self._drivers: list[_Driver] = []
        self._orders: list[_Order] = []
        self._by_id: dict[str, _Order] = {}
        self._headers: dict[str, str] = {}
        self._travel: TravelTimeProvider | None = None
        self._model = DrivingModel(fix_interval_s=float(config.position_interval_s))
        self.scenario: Scenario | None = None
        self.errors: list[str] = []
        self.steps = 0  # actions performed
        self._depot: LatLon | None = None
        self._incident: LatLon | None = None
        # Called before the clock moves during setup (run_fast runs the worker's jobs there),
        # and after each action (run_fast writes the buffered positions there).
        self.on_clock_moved: Callable[[], None] | None = None
        self.after_action: Callable[[], None] | None = None

    # --- the contract ---------------------------------------------------------------------

    def setup(self) -> Scenario:
        """Create the merchant and its fleet, book the orders booked ahead (moving the clock
        back to each booking), plan and publish the day; queue the day's actions."""
        from doorstep.routing.travel.factory import provider_from_settings

        settings = self.runtime.settings.model_copy(
            update={"travel_provider": "osm", "osm_source": self.city.source}
        )
        self._travel = provider_from_settings(settings)
        places = self._places()
        day, tz = self.day, self.tz
        specs = draw_orders(
            seed=self.config.seed, orders=self.config.orders, day=day, city=self.city,
            places=places,
        )  # fmt: skip
        first_booking = min(s.booked_at for s in specs)
        self._set_clock(first_booking - timedelta(hours=1))
        merchant_id, api_key = self._create_merchant()
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._configure_messages()
        depot_id = self._create_depot()
        zone_id = self._create_zone(depot_id)
        self._create_calendar(depot_id, zone_id)
        self._create_pickup_point()
        self._create_fleet(depot_id)
        self._orders = [_Order(spec) for spec in specs]
        for order in self._orders:
            if order.spec.booking is not Booking.SAME_DAY:
                self._book(order)
            else:
                self._at(
                    order.spec.booked_at, f"same-day {order.spec.reference}", self._booker(order)
                )
        self._set_clock(_local(day - timedelta(days=1), PLAN_AT, tz))
        self._plan_and_publish(depot_id)
        self._queue_day()
        starts_at = _local(day, time(6, 0), tz)
        ends_at = max(s.end for d in self._drivers for s in d.shifts)
        self._set_clock(starts_at)
        ahead = [o for o in self._orders if o.spec.booking is Booking.AHEAD]
        weekend = [o for o in self._orders if o.spec.booking is Booking.WEEKEND]
        self.scenario = Scenario(
            merchant_id=merchant_id,
            api_key=api_key,
            day=day,
            timezone=self.city.timezone,
            depot_id=depot_id,
            driver_ids=[d.id for d in self._drivers],
            order_ids=[o.id for o in ahead],
            tracking_urls={o.id: o.tracking_url for o in self._orders if o.id},
            starts_at=starts_at,
            ends_at=ends_at,
            weekend_order_ids=[o.id for o in weekend],
            city=self.city.name,
            attribution=self.city.attribution,
        )
        return self.scenario

    def next_due(self) -> datetime | None:
        """When the next action is due; None when the day is over."""
        return self._queue[0].at if self._queue else None

    def advance(self, until: datetime) -> None:
        """Perform every action due up to ``until``, in time order (actions may queue more)."""
        while self._queue and self._queue[0].at <= until:
            action = heapq.heappop(self._queue)
            self.steps += 1
            try:
                action.run()
            except (SimulationError, httpx.HTTPError, KeyError, ValueError) as exc:
                # One person's failed step must not end the day (the demo runs for hours).
                log.warning("simulated action %s failed: %s", action.name, exc)
                self.errors.append(f"{action.name}: {exc}")
            if self.after_action is not None:
                self.after_action()

    def finished(self) -> bool:
        return not self._queue

    def progress(self) -> Progress:
        """The day so far, read from Doorstep's database: the day's orders, delivered, late
        (delivered after the window, or still on the way after it ended), failed attempts,
        recipient messages sent, and orders out for delivery."""
        from sqlalchemy import func, select

        from doorstep.domain.dispatch.models import Stop
        from doorstep.domain.notifications.models import OutboxMessage
        from doorstep.domain.orders.models import DeliveryEvent, Order

        now = self.runtime.clock.now()
        assert self.scenario is not None
        lo = _local(self.day, time(0), self.tz)
        hi = lo + timedelta(days=1)
        merchant = self.scenario.merchant_id
        on_the_way = ("out_for_delivery", "delivery_delayed")
        # Late is judged at the door, as the analytics do (ADR 0018): the order's latest stop
        # arrival, else its delivery time.
        arrivals = (
            select(Stop.order_id, func.max(Stop.actual_arrival).label("at_door"))
            .where(Stop.merchant_id == merchant)
            .group_by(Stop.order_id)
            .subquery()
        )
        with self.runtime.read_sessions() as s:
            rows = s.execute(
                select(
                    Order.status,
                    func.coalesce(arrivals.c.at_door, Order.delivered_at),
                    Order.window_end,
                )
                .outerjoin(arrivals, arrivals.c.order_id == Order.id)
                .where(
                    Order.merchant_id == merchant, Order.window_start >= lo,
                    Order.window_start < hi,
                )
            ).all()  # fmt: skip
            sent = s.scalar(
                select(func.count()).select_from(OutboxMessage).where(
                    OutboxMessage.merchant_id == merchant, OutboxMessage.status == "sent",
                    OutboxMessage.channel.in_(("email", "sms", "chat")),
                )
            )  # fmt: skip
            failed = s.scalar(
                select(func.count()).select_from(DeliveryEvent).where(
                    DeliveryEvent.merchant_id == merchant,
                    DeliveryEvent.type == "delivery.failed",
                    DeliveryEvent.occurred_at >= lo, DeliveryEvent.occurred_at < hi,
                )
            )  # fmt: skip

        def late(status: str, at_door: datetime | None, end: datetime | None) -> bool:
            if end is None:
                return False
            end = end if end.tzinfo else end.replace(tzinfo=UTC)
            if status == "delivered" and at_door is not None:
                at = at_door if at_door.tzinfo else at_door.replace(tzinfo=UTC)
                return at > end
            return status in on_the_way and now > end

        return Progress(
            now=now,
            orders=len(rows),
            delivered=sum(1 for r in rows if r.status == "delivered"),
            late=sum(1 for status, at_door, end in rows if late(status, at_door, end)),
            failed=int(failed or 0),
            messages_sent=int(sent or 0),
            out_for_delivery=sum(1 for r in rows if r.status in on_the_way),
        )

    def order_ids(self) -> list[str]:
        """The day's orders booked so far (same-day ones included, the weekend's not), in
        booking order."""
        return [o.id for o in self._orders if o.id and o.spec.booking is not Booking.WEEKEND]

    # --- plumbing -------------------------------------------------------------------------

    def _set_clock(self, at: datetime) -> None:
        if self.on_clock_moved is not None:
            self.on_clock_moved()
        setter = getattr(self.runtime.clock, "set", None)
        if setter is None:
            raise SimulationError("the runtime's clock cannot be set (use a simulated clock)")
        setter(at)

    def _tick(self) -> None:
        """One simulated second on: objects created one after the other get ids (which sort by
        creation time) in that order, so the same seed lays out the same plan."""
        self._set_clock(self.runtime.clock.now() + timedelta(seconds=1))

    def _at(self, at: datetime, name: str, run: Callable[[], None]) -> None:
        heapq.heappush(self._queue, _Action(at, next(self._seq), name, run))

    def _call(
        self, method: str, url: str, *, ok: tuple[int, ...] = (200, 201), **kw: Any
    ) -> httpx.Response:
        headers = {**self._headers, **kw.pop("headers", {})}
        resp = self.http.request(method, url, headers=headers, **kw)
        if resp.status_code not in ok:
            raise SimulationError(f"{method} {url} -> {resp.status_code}: {resp.text[:500]}")
        return resp

    def _json(self, method: str, url: str, **kw: Any) -> Any:
        return self._call(method, url, **kw).json()

    # --- the city -------------------------------------------------------------------------

    def _places(self) -> list[StreetPoint]:
        from doorstep.geocoding.offline import OfflineGeocoder

        cache = self.runtime.settings.data_dir / "cache" / "geocoding"
        index = OfflineGeocoder(self.city.source, cache_dir=cache).index()
        raw = {k: [(p.name, p.lines) for p in places] for k, places in index.streets.items()}
        points = street_points(raw)
        ring = self.city.zone or box_ring(points)
        self._zone = ring
        inner = [p for p in points if inside(ring, p.lat, p.lon)]
        if len(inner) < 20:
            raise SimulationError(f"too few street places in {self.city.name}'s zone")
        if self.city.depot is not None:
            self._depot = self.city.depot
        else:
            mid = LatLon(
                sorted(p.lat for p in inner)[len(inner) // 2],
                sorted(p.lon for p in inner)[len(inner) // 2],
            )
            best = min(inner, key=lambda p: _meters(mid, LatLon(p.lat, p.lon)))
            self._depot = LatLon(best.lat, best.lon)
        lats = sorted(p.lat for p in inner)
        lons = sorted(p.lon for p in inner)
        self._incident = LatLon(lats[len(lats) // 2], lons[len(lons) // 2])
        # Keep places at least 40 m from the depot: nobody orders to the warehouse.
        return [p for p in inner if _meters(self._depot, LatLon(p.lat, p.lon)) > 40]

    # --- setup: merchant, fleet, calendar -------------------------------------------------

    def _create_merchant(self) -> tuple[str, str]:
        from doorstep.db.engine import transaction
        from doorstep.domain.accounts.service import create_merchant, issue_api_key

        with transaction(self.runtime.sessions) as session:
            merchant = create_merchant(
                session,
                self.runtime.clock,
                name=f"{self.city.name} Corner Shop",
                timezone=self.city.timezone,
            )
            issued = issue_api_key(session, self.runtime.clock, merchant, "simulator")
            return merchant.id, issued.plaintext

    def _configure_messages(self) -> None:
        # A merchant who keeps to about four messages a delivery: confirmations and proofs
        # by e-mail, the moments that need the recipient's attention now by SMS.
        self._json(
            "PATCH",
            "/v1/notification-settings",
            json={
                "sms_url": self.sinks.sms_url,
                "triggers": {
                    "order_confirmed": ["email"],
                    "window_changed": ["email"],
                    "out_for_delivery": ["sms"],
                    "arriving_soon": ["sms"],
                    "delayed": ["sms"],
                    "delivered": ["email"],
                    "attempt_failed": ["sms", "email"],
                    # Confirmations of the recipient's own changes: they saw the page say so.
                    "redirected": ["email"],
                    "held": ["email"],
                    "instructions_changed": ["email"],
                },
            },
        )
        self._json(
            "POST",
            "/v1/webhook-endpoints",
            json={"url": self.sinks.webhook_url, "events": ["order.*", "delivery.*"]},
        )

    def _address(self, line1: str, at: LatLon) -> dict[str, Any]:
        return {
            "line1": line1,
            "city": self.city.name,
            "postal_code": self.city.postal_code,
            "country": self.city.country,
            "lat": at.lat,
            "lon": at.lon,
        }

    def _create_depot(self) -> str:
        assert self._depot is not None
        body = {
            "name": self.city.depot_name,
            "address": self._address(self.city.depot_street, self._depot),
            "opening_hours": {d: [["06:00", "20:00"]] for d in EVERY_DAY},
        }
        return str(self._json("POST", "/v1/depots", json=body)["id"])

    def _create_zone(self, depot_id: str) -> str:
        ring = [[lon, lat] for lon, lat in self._zone]
        body = {
            "depot_id": depot_id,
            "name": self.city.name,
            "geometry": {"type": "Polygon", "coordinates": [ring]},
        }
        return str(self._json("POST", "/v1/zones", json=body)["id"])

    def _create_calendar(self, depot_id: str, zone_id: str) -> str:
        per_window = math.ceil(self.config.orders * 1.4 / len(WINDOWS)) + 5
        windows = [
            {
                "days": EVERY_DAY,
                "start": start,
                "end": end,
                "capacity": per_window,
                "fee_cents": 0 if start < "16:00" else 200,
            }
            for start, end in WINDOWS
        ]
        body = {
            "depot_id": depot_id,
            "zone_id": zone_id,
            "name": f"{self.city.name} windows",
            "windows": windows,
            "same_day_cutoff": SAME_DAY_CUTOFF,
            "next_day_cutoff": "21:00",
            "lead_time_minutes": 120,
            "horizon_days": 14,
        }
        return str(self._json("POST", "/v1/slot-calendars", json=body)["id"])

    def _create_pickup_point(self) -> None:
        assert self._depot is not None
        body = {
            "name": f"{self.city.depot_name} parcel locker",
            "kind": "locker",
            "address": self._address(self.city.depot_street, self._depot),
        }
        self._json("POST", "/v1/pickup-points", json=body)

    def _create_fleet(self, depot_id: str) -> None:
        rng = random.Random(f"{self.config.seed}:fleet")
        names = ["Marco", "Sofia", "Luca", "Nina", "Hugo", "Elsa", "Omar", "Iris", "Paolo", "Mia"]
        bikes = max(1, round(self.config.drivers * 0.3)) if self.config.drivers > 1 else 0
        for i in range(self.config.drivers):
            bike = i >= self.config.drivers - bikes
            profile = Profile.CARGO_BIKE if bike else Profile.VAN
            self._tick()
            vehicle = self._json(
                "POST",
                "/v1/vehicles",
                json={
                    "name": f"{'Cargo bike' if bike else 'Van'} {i + 1}",
                    "profile": profile.value,
                    "capacity_weight_kg": 150 if bike else 800,
                    "capacity_parcels": 30 if bike else 120,
                },
            )
            name = f"{names[i % len(names)]} {chr(65 + (i // len(names)) % 26)}{rng.randint(1, 9)}"
            device = f"sim-{self.config.seed}-{i + 1:02d}"
            self._tick()
            driver = self._json(
                "POST",
                "/v1/drivers",
                json={"name": name, "device_id": device, "phone": f"{self.city.phone_prefix}"
                      f"{str(10_000_000 + i).rjust(self.city.phone_digits, '0')}"},
            )  # fmt: skip
            d = _Driver(i, driver["id"], name, device, profile, vehicle["id"], at=self._depot)
            for start, end in (MORNING, AFTERNOON):
                self._tick()
                shift = self._json(
                    "POST",
                    "/v1/shifts",
                    json={
                        "driver_id": d.id,
                        "vehicle_id": d.vehicle_id,
                        "depot_id": depot_id,
                        "start_at": _local(self.day, start, self.tz).isoformat(),
                        "end_at": _local(self.day, end, self.tz).isoformat(),
                    },
                )
                d.shifts.append(
                    _Shift(
                        shift["id"],
                        _local(self.day, start, self.tz),
                        _local(self.day, end, self.tz),
                    )
                )
            self._drivers.append(d)

    # --- the shop's checkout --------------------------------------------------------------

    def _booker(self, order: _Order) -> Callable[[], None]:
        return lambda: self._book(order)

    def _checkout_at(self, spec: OrderSpec, seconds: int) -> None:
        """Bookings made during setup happen at their own instants: the customer looks at the
        windows, picks one 20 s later, pays after a minute (so a clock running at speed cannot
        let the reservation lapse in between). On the day itself the clock just runs."""
        if self.scenario is None:
            self._set_clock(spec.booked_at + timedelta(seconds=seconds))

    def _book(self, order: _Order) -> None:
        """Quote, reserve the window the customer picks, create the order. A hold that lapsed
        before the order came (a clock at thousands of times real speed on a busy machine) is
        what a shop's checkout meets too: it quotes and reserves again, a few times at most."""
        spec = order.spec
        for attempt in range(CHECKOUT_TRIES):
            created = self._checkout(spec, attempt)
            lapsed = created.status_code == 409 and str(created.json().get("type", "")).endswith(
                f"/{RESERVATION_GONE}"
            )
            if not lapsed:
                break
        if created.status_code not in (200, 201):
            raise SimulationError(f"POST /v1/orders -> {created.status_code}: {created.text[:500]}")
        body = created.json()
        order.id = str(body["id"])
        order.tracking_url = str(body["tracking_url"])
        order.tracking_path = urlsplit(order.tracking_url).path
        self._by_id[order.id] = order

    def _checkout(self, spec: OrderSpec, attempt: int) -> httpx.Response:
        """One pass through the checkout; the order's create answer, whatever its status."""
        point = {"lat": spec.lat, "lon": spec.lon}
        parcels = [{"weight_kg": w} for w in spec.parcels]
        self._checkout_at(spec, 0)
        quote = self._json(
            "POST",
            "/v1/slots/quote",
            json={
                "address": point,
                "parcels": parcels,
                "from": spec.target_day.isoformat(),
                "to": spec.target_day.isoformat(),
            },
        )
        windows = [w for w in quote["windows"] if w["date"] == spec.target_day.isoformat()]
        if not windows:
            raise SimulationError(f"{spec.reference}: no window offered on {spec.target_day}")
        windows.sort(key=lambda w: w["start"])
        chosen = windows[min(int(spec.window_pick * len(windows)), len(windows) - 1)]
        self._checkout_at(spec, 20)
        reservation = self._json(
            "POST",
            "/v1/slots/reservations",
            json={
                "calendar_id": chosen["calendar_id"],
                "start": chosen["start"],
                "address": point,
                "parcels": parcels,
            },
        )
        body = {
            "reference": spec.reference,
            "recipient": {
                "name": spec.name,
                "phone": spec.phone,
                "email": spec.email,
                "locale": spec.locale,
            },
            "address": self._address(
                f"{spec.house_number} {spec.street}", LatLon(spec.lat, spec.lon)
            ),
            "parcels": parcels,
            "reservation_id": reservation["id"],
        }
        self._checkout_at(spec, 60)
        # A new key per pass: the lapsed pass's 409 is that key's stored answer.
        key = f"sim-{spec.reference}" + (f"-{attempt}" if attempt else "")
        return self._call(
            "POST", "/v1/orders", ok=(200, 201, 409), json=body, headers={"Idempotency-Key": key}
        )

    # --- the dispatcher -------------------------------------------------------------------

    def _plan_body(self) -> dict[str, Any]:
        return {
            "seed": self.config.seed,
            "max_iterations": PLAN_ITERATIONS,
            "time_limit_s": PLAN_TIME_LIMIT_S,
        }

    def _plan_and_publish(self, depot_id: str) -> None:
        body = {"depot_id": depot_id, "date": self.day.isoformat(), **self._plan_body()}
        plan = self._json("POST", "/v1/plans", json=body)
        self._json("POST", f"/v1/plans/{plan['id']}/publish")

    def _replan(self) -> None:
        plans = self._json("GET", "/v1/plans", params={"date": self.day.isoformat()})
        published = [p for p in plans["data"] if p["status"] == "published"]
        if not published:
            raise SimulationError("no published plan to re-plan")
        draft = self._json("POST", f"/v1/plans/{published[0]['id']}/replan", json=self._plan_body())
        self._json("POST", f"/v1/plans/{draft['id']}/publish")
        self._wake_idle_drivers()

    # --- the day's queue ------------------------------------------------------------------

    def _queue_day(self) -> None:
        for order in self._orders:
            spec = order.spec
            if spec.change is Change.RESCHEDULE and spec.change_at is not None:
                self._at(spec.change_at, f"reschedule {spec.reference}", self._rescheduler(order))
            elif spec.change is Change.INSTRUCTIONS and spec.change_at is not None:
                self._at(spec.change_at, f"instructions {spec.reference}", self._instructor(order))
            elif spec.change is not Change.NONE and spec.change_at is not None:
                self._at(spec.change_at, f"{spec.change} {spec.reference}", self._changer(order))
        self._at(_local(self.day, REPLAN_AT, self.tz), "replan", self._replan)
        for d in self._drivers:
            for k, shift in enumerate(d.shifts):
                self._at(shift.start, f"start {d.name} shift {k}", self._starter(d, k))

    # --- recipients on the tracking page --------------------------------------------------

    def _page(self, order: _Order) -> tuple[str | None, list[str]]:
        """The tracking page's form token (None when it offers no change) and windows."""
        page = self.http.get(order.tracking_path)
        if page.status_code != 200:
            raise SimulationError(f"tracking page of {order.spec.reference}: {page.status_code}")
        token = _FORM_TOKEN.search(page.text)
        if token is None:
            return None, []
        values = [html.unescape(v) for v in _WINDOW_VALUE.findall(page.text)]
        return html.unescape(token.group(1)), values

    def _post_form(self, order: _Order, action: str, form: dict[str, str]) -> None:
        resp = self.http.post(f"{order.tracking_path}/{action}", data=form, follow_redirects=False)
        if resp.status_code != 303:
            said = _ERROR_TEXT.search(resp.text)
            why = html.unescape(re.sub(r"<[^>]+>", " ", said.group(1))) if said else ""
            words = " ".join(why.split())
            raise SimulationError(
                f"{order.spec.reference}: {action} refused ({resp.status_code}) {words}"
            )

    def _rescheduler(self, order: _Order) -> Callable[[], None]:
        def run() -> None:
            if not order.id:
                return
            token, values = self._page(order)
            if token is None or not values:
                return  # too late: the page no longer offers changes
            current = self._current_window(order)
            today = [v for v in values if self._value_day(v) == self.day]
            later = [v for v in today if current is None or self._value_start(v) > current]
            choice = later[0] if later else values[0]
            self._post_form(order, "reschedule", {"form_token": token, "window": choice})

        return run

    def _instructor(self, order: _Order) -> Callable[[], None]:
        def run() -> None:
            if not order.id:
                return
            token, _ = self._page(order)
            if token is None:
                return
            text = order.spec.instructions or ""
            self._post_form(order, "instructions", {"form_token": token, "instructions": text})

        return run

    def _changer(self, order: _Order) -> Callable[[], None]:
        """A neighbour, a safe place or a hold, on the page's own forms."""

        def run() -> None:
            if not order.id:
                return
            token, _ = self._page(order)
            if token is None:
                return  # too late: the page no longer offers changes
            spec = order.spec
            rng = random.Random(f"{self.config.seed}:{spec.change}:{spec.reference}")
            form: dict[str, str] = {"form_token": token}
            if spec.change is Change.NEIGHBOUR:
                number = int(spec.house_number) + rng.choice((-2, -1, 1, 2))
                form |= {
                    "kind": "neighbour",
                    "neighbour_name": rng.choice(NEIGHBOURS),
                    "house_number": str(max(1, number)),
                }
                self._post_form(order, "redirect", form)
            elif spec.change is Change.SAFE_PLACE:
                form |= {"kind": "safe_place", "place": rng.choice(SAFE_PLACES)}
                self._post_form(order, "redirect", form | {"photo_consent": "yes"})
            elif spec.change is Change.HOLD:
                back = self.day + timedelta(days=rng.randint(2, 5))
                self._post_form(order, "hold", form | {"until": back.isoformat()})

        return run

    def _rebooker(self, order: _Order) -> Callable[[], None]:
        def run() -> None:
            token, values = self._page(order)
            if token is None:
                return  # the dispatcher already sent the driver back: nothing to rebook
            if not values:
                raise SimulationError(f"{order.spec.reference}: no window to rebook")
            # The first window of another day (the driver will not come back today), then the
            # next one when the page says a window is gone.
            later = [v for v in values if self._value_day(v) > self.day] or values
            refused: SimulationError | None = None
            for value in later[:4]:
                try:
                    self._post_form(order, "reschedule", {"form_token": token, "window": value})
                except SimulationError as exc:
                    refused = exc
                    log.warning("%s %s", value, exc)
                    continue
                return
            assert refused is not None
            raise refused

        return run

    def _value_start(self, value: str) -> datetime:
        return datetime.fromisoformat(value.split("|", 1)[1])

    def _value_day(self, value: str) -> date:
        return self._value_start(value).astimezone(self.tz).date()

    def _current_window(self, order: _Order) -> datetime | None:
        data = self._json("GET", f"/v1/orders/{order.id}")
        window = data.get("window")
        return datetime.fromisoformat(window["start"]) if window else None

    # --- drivers --------------------------------------------------------------------------

    def _routes(self, d: _Driver) -> list[dict[str, Any]]:
        answer = self._json(
            "GET", f"/v1/drivers/{d.id}/route", params={"date": self.day.isoformat()}
        )
        return list(answer["routes"])

    def _route_of(self, d: _Driver, k: int) -> dict[str, Any] | None:
        shift_id = d.shifts[k].id
        found = [r for r in self._routes(d) if r["shift_id"] == shift_id]
        return found[0] if found else None

    def _starter(self, d: _Driver, k: int) -> Callable[[], None]:
        def run() -> None:
            d.shifts[k].started = True
            if d.busy:  # still on the previous shift's stops: this one starts after them
                d.waiting_shift = k
                return
            d.at = self._depot
            self._next_leg(d, k)

        return run

    def _wake_idle_drivers(self) -> None:
        """After a re-plan, drivers waiting at the depot look at their route again."""
        now = self.runtime.clock.now()
        for d in self._drivers:
            on = [k for k, s in enumerate(d.shifts) if s.started and s.start <= now < s.end]
            if on and not d.busy:
                self._next_leg(d, on[-1])

    def _idle(self, d: _Driver) -> None:
        d.busy = False
        if d.waiting_shift is not None:
            k, d.waiting_shift = d.waiting_shift, None
            self._next_leg(d, k)

    def _next_leg(self, d: _Driver, k: int) -> None:
        """Look at the route as Doorstep has it now and drive to its next open stop (or back
        to the depot when none is left, then wait there for work or the next shift)."""
        assert self._travel is not None and d.at is not None and self._depot is not None
        now = self.runtime.clock.now()
        route = self._route_of(d, k)
        if route is not None and route["status"] == "planned" and route["stops"]:
            # The shift's first leg (a re-plan keeps a started route active: no restart).
            self._call("POST", f"/v1/routes/{route['id']}/start")
            route = self._route_of(d, k)
        stops = (
            []
            if route is None
            else [s for s in route["stops"] if s["status"] in ("planned", "en_route", "arrived")]
        )
        stops.sort(key=lambda s: s["sequence"])
        d.legs += 1
        seed = self._leg_seed(d, d.legs)
        if not stops:
            if _meters(d.at, self._depot) < 30:
                self._idle(d)
                return
            drive = drive_route(
                self._travel, d.profile, d.at, [], now, seed=seed, tz=self.tz,
                model=self._model, end=self._depot, slowdown=self._slowdown,
            )  # fmt: skip
            self._queue_fixes(d, drive.fixes)
            d.busy = True

            def home() -> None:
                d.at = self._depot
                if self.runtime.clock.now() < d.shifts[k].end:
                    self._next_leg(d, k)  # work added while driving back?
                else:
                    self._idle(d)

            self._at(drive.end_at or now, f"{d.name} back at the depot", home)
            return
        d.busy = True
        stop = stops[0]
        target = LatLon(float(stop["lat"]), float(stop["lon"]))
        window = stop.get("window")
        opens = datetime.fromisoformat(window["start"]) if window else None
        spec = StopSpec(target, float(stop.get("service_time_s") or SERVICE_S), opens)
        drive = drive_route(
            self._travel, d.profile, d.at, [spec], now, seed=seed, tz=self.tz,
            model=self._model, slowdown=self._slowdown,
        )  # fmt: skip
        visit = drive.visits[0]
        self._queue_fixes(d, [f for f in drive.fixes if f.at <= visit.arrival])
        order = self._by_id.get(str(stop["order_id"]))
        self._at(
            visit.arrival,
            f"{d.name} arrives {stop['reference']}",
            lambda: self._arrive(d, k, stop["id"], target),
        )
        self._at(
            visit.departure,
            f"{d.name} leaves {stop['reference']}",
            lambda: self._finish(d, k, stop["id"], order, target),
        )

    def _leg_seed(self, d: _Driver, leg: int) -> int:
        digest = hashlib.sha256(f"{self.config.seed}:{d.index}:{leg}".encode()).digest()
        return int.from_bytes(digest[:4], "big")

    def _slowdown(self, at: datetime, a: LatLon, b: LatLon) -> float:
        start, end, factor, radius = SLOWDOWN
        if self._incident is None:
            return 1.0
        lo, hi = _local(self.day, start, self.tz), _local(self.day, end, self.tz)
        if not lo <= at < hi:
            return 1.0
        near = min(_meters(a, self._incident), _meters(b, self._incident))
        return factor if near <= radius else 1.0

    def _queue_fixes(self, d: _Driver, fixes: list[Fix]) -> None:
        """The phone records a fix every ``position_interval_s`` and uploads what it has every
        ``upload_interval_s`` (Traccar Client's JSON form, a list of locations), at the last
        fix's instant; with an upload interval no longer than the fix interval, one by one."""
        every = timedelta(seconds=max(self.config.upload_interval_s, 1))
        batch: list[Fix] = []
        for fix in fixes:
            if batch and fix.at - batch[0].at >= every:
                self._at(batch[-1].at, f"{d.name} positions", self._poster(d, batch))
                batch = []
            batch.append(fix)
        if batch:
            self._at(batch[-1].at, f"{d.name} positions", self._poster(d, batch))

    def _poster(self, d: _Driver, fixes: list[Fix]) -> Callable[[], None]:
        def run() -> None:
            if len(fixes) == 1:
                fix = fixes[0]
                params: dict[str, Any] = {
                    "id": d.device_id,
                    "lat": f"{fix.lat:.6f}",
                    "lon": f"{fix.lon:.6f}",
                    "timestamp": int(fix.at.timestamp()),
                    "speed": f"{fix.speed_mps * KNOTS_PER_MPS:.1f}",
                    "accuracy": f"{fix.accuracy_m:.1f}",
                }
                if fix.heading_deg is not None:
                    params["bearing"] = f"{fix.heading_deg:.0f}"
                resp = self.http.get("/ingest/osmand", params=params)
            else:
                body = {
                    "device_id": d.device_id,
                    "location": [
                        {
                            "timestamp": f.at.astimezone(UTC).isoformat(),
                            "coords": {
                                "latitude": round(f.lat, 6),
                                "longitude": round(f.lon, 6),
                                "speed": round(f.speed_mps, 2),
                                "heading": None if f.heading_deg is None else round(f.heading_deg),
                                "accuracy": f.accuracy_m,
                            },
                        }
                        for f in fixes
                    ],
                }
                resp = self.http.post("/ingest/osmand", json=body)
            if resp.status_code != 200:
                raise SimulationError(f"positions refused: {resp.status_code} {resp.text[:200]}")

        return run

    def _arrive(self, d: _Driver, k: int, stop_id: str, at: LatLon) -> None:
        resp = self._call(
            "POST", f"/v1/stops/{stop_id}/arrive", ok=(200, 404, 409),
            data={"lat": f"{at.lat:.6f}", "lon": f"{at.lon:.6f}"},
        )  # fmt: skip
        if resp.status_code != 200:
            log.info("arrive at %s refused (%s): the route changed", stop_id, resp.status_code)

    def _finish(self, d: _Driver, k: int, stop_id: str, order: _Order | None, at: LatLon) -> None:
        form = {"lat": f"{at.lat:.6f}", "lon": f"{at.lon:.6f}"}
        key = {"Idempotency-Key": f"sim-{stop_id}"}
        try:
            if order is not None and order.spec.not_home and order.attempts == 0:
                order.attempts += 1
                resp = self._call(
                    "POST", f"/v1/stops/{stop_id}/fail", ok=(200, 404, 409),
                    data={**form, "reason": "consignee_not_home", "note": "Nobody answered"},
                    headers=key,
                )  # fmt: skip
                if resp.status_code == 200:
                    later = self.runtime.clock.now() + timedelta(
                        minutes=order.spec.rebook_after_min
                    )
                    self._at(later, f"rebook {order.spec.reference}", self._rebooker(order))
            else:
                if order is not None:
                    order.attempts += 1
                seed = f"{self.config.seed}:{stop_id}"
                name = order.spec.name if order is not None else "Recipient"
                self._call(
                    "POST", f"/v1/stops/{stop_id}/complete", ok=(200, 404, 409),
                    data={**form, "received_by": name.split()[0]},
                    files={
                        "photo": ("photo.jpg", _photo(seed), "image/jpeg"),
                        "signature": ("signature.png", _signature(seed), "image/png"),
                    },
                    headers=key,
                )  # fmt: skip
        finally:
            d.at = at
            self._next_leg(d, k)


# --- the whole day, as fast as it can go ----------------------------------------------------


def simulation_settings(
    config: DayConfig, base: Settings | None = None, **changes: Any
) -> Settings:
    """Settings for a Doorstep that a simulated day drives: road travel times over the day's
    extract (so the plan and the drivers share one network), webhooks to the local sinks
    allowed (127.0.0.1), and ``changes`` on top (e.g. ``smtp_url``)."""
    from doorstep.settings import Settings

    base = base or Settings()
    city = city_for(config.city, config.osm, config.timezone)
    update: dict[str, Any] = {
        "travel_provider": "osm",
        "osm_source": city.source,
        "webhook_allow_private": True,
        **changes,
    }
    return base.model_copy(update=update)


# In fast mode the ETA refresh runs once a simulated minute rather than every 5 s: the ETA
# engine writes only moves of ``eta_material_change_s`` (3 min) anyway, and at 5 s a day of ten
# routes would spend most of its time re-estimating unchanged routes.
FAST_INTERVALS_S = {"refresh_etas": 60.0}


@dataclass
class _InlineJobs:
    """The worker's jobs run inline at simulated times, in the registry's order: a job runs
    when its interval (simulated seconds) has passed, again at once while it is busy."""

    runtime: Runtime
    last: dict[str, datetime] = field(default_factory=dict)
    intervals: dict[str, float] = field(default_factory=lambda: dict(FAST_INTERVALS_S))

    def run(self) -> int:
        from doorstep.worker.jobs import registered_jobs

        now = self.runtime.clock.now()
        done = 0
        for job in registered_jobs():
            seen = self.last.get(job.name)
            interval = self.intervals.get(job.name, job.interval_s)
            if seen is not None and (now - seen).total_seconds() < interval:
                continue
            self.last[job.name] = now
            for _ in range(1000):
                work = job.run(self.runtime)
                done += work
                if job.busy_threshold is None or work < job.busy_threshold:
                    break
        return done


def run_fast(
    config: DayConfig,
    *,
    database_url: str | None = None,
    progress: Callable[[DaySimulation], None] | None = None,
    settings: Settings | None = None,
) -> tuple[Scenario, KpiReport]:
    """Simulate the whole day as fast as it can go and read its KPIs from Doorstep's own
    analytics: a frozen clock set to each next action, the worker's jobs inline after each
    step (deterministic), a temporary SQLite database unless ``database_url``."""
    import tempfile
    import warnings

    with warnings.catch_warnings():
        # Starlette's notice that its test client will move to httpx2 is for test suites; the
        # simulator's user has nothing to do about it.
        warnings.filterwarnings("ignore", message=".*httpx2.*")
        from fastapi.testclient import TestClient

    from doorstep.clock import FrozenClock, SystemClock
    from doorstep.db.engine import make_engine, transaction
    from doorstep.domain.analytics import kpi_report
    from doorstep.web.app import create_app

    city = city_for(config.city, config.osm, config.timezone)
    day = config.day or SystemClock().now().astimezone(ZoneInfo(city.timezone)).date()
    config = DayConfig(**{**config.__dict__, "day": day})
    clock = FrozenClock(_local(day, time(6, 0), ZoneInfo(city.timezone)))
    with tempfile.TemporaryDirectory(prefix="doorstep-sim-") as tmp, Sinks(clock) as sinks:
        url = database_url or f"sqlite:///{Path(tmp) / 'doorstep.sqlite3'}"
        conf = simulation_settings(
            config,
            settings,
            database_url=url,
            smtp_url=sinks.smtp_url,
            run_worker=False,
            position_device_cache_s=0.0,
            secret_key=hashlib.sha256(f"doorstep-sim-{config.seed}".encode()).hexdigest(),
            log_level="WARNING",
        )
        runtime = Runtime(settings=conf, clock=clock, engine=make_engine(url))
        try:
            app = create_app(runtime)
            jobs = _InlineJobs(runtime)
            with TestClient(app, base_url=conf.base_url) as client:
                sim = DaySimulation(config, runtime, client, sinks)
                writer = app.state.position_ingest.writer

                def step() -> None:
                    writer.flush()
                    jobs.run()

                sim.on_clock_moved = step
                # Each action sees every position posted before it (the writer's own thread
                # flushes on wall time, which would make the day depend on the machine).
                sim.after_action = writer.flush
                scenario = sim.setup()
                while (due := sim.next_due()) is not None:
                    clock.set(max(due, clock.now()))
                    sim.advance(due)
                    step()
                    if progress is not None:
                        progress(sim)
                sim.on_clock_moved = None
                # The last messages: let the outbox's retries and ETA-free jobs finish.
                for _ in range(120):
                    clock.advance(timedelta(minutes=1))
                    if jobs.run() == 0 and _outbox_idle(runtime, scenario.merchant_id):
                        break
                if progress is not None:
                    progress(sim)
                with transaction(runtime.sessions) as session:
                    report = kpi_report(session, scenario.merchant_id, day, day, clock.now())
        finally:
            runtime.close()
    return scenario, report


def _outbox_idle(runtime: Runtime, merchant_id: str) -> bool:
    from sqlalchemy import func, select

    from doorstep.domain.notifications.models import OutboxMessage

    with runtime.read_sessions() as s:
        waiting = s.scalar(
            select(func.count()).select_from(OutboxMessage).where(
                OutboxMessage.merchant_id == merchant_id,
                OutboxMessage.status.in_(("pending", "sending")),
            )
        )  # fmt: skip
    return not waiting
