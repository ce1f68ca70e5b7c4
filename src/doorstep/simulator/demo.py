"""``doorstep demo``: a live simulated day served by a real Doorstep, for a newcomer's browser.

:class:`Demo` puts together what the command shows:

* a fresh SQLite database in a directory of its own (unless ``database_url`` is given), so each
  run starts clean and never touches the user's own data;
* the local message sinks (SMTP and webhook/SMS receivers) that Doorstep sends to;
* the real app (``web/app.py``, migrations applied, the worker in-process) served by uvicorn
  from a thread, on a :class:`~doorstep.clock.SimulatedClock` running ``speed`` times faster
  than the wall clock;
* the day (:class:`~doorstep.simulator.day.DaySimulation`): set up through the public API, then
  advanced from a thread every ~100 ms to whatever the clock says;
* the links a newcomer opens: a one-time console sign-in link (and a password for a second
  browser), three recipients' tracking pages chosen to be worth watching, one driver's app
  sign-in link and the API docs.

Lifetimes that Doorstep measures on its clock (the driver's sign-in link, the console link) are
in *simulated* time, so the demo stretches them by the speed: they last about as long on the
wall clock as they would in a real day.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:  # the heavy modules are imported when a demo starts
    import httpx
    import uvicorn

    from doorstep.clock import SimulatedClock
    from doorstep.runtime import Runtime
    from doorstep.simulator.day import DayConfig, DaySimulation, Progress, Scenario
    from doorstep.simulator.sinks import SinkMessage, Sinks

__all__ = [
    "DEMO_EMAIL",
    "Demo",
    "DemoLinks",
    "DemoOptions",
    "DemoSnapshot",
    "TrackingPick",
]

log = logging.getLogger(__name__)

DEMO_EMAIL = "demo@example.com"
# How long before the first shift the clock is put once the day is booked and planned: a few
# seconds of wall time at the default speed to open the links before the vans leave.
LEAD = timedelta(minutes=3)
# The console link and the driver's link last about this long on the wall clock.
LINK_WALL_TTL = timedelta(minutes=30)
TICK_S = 0.1  # how often the day is advanced to the clock's "now"
SETTLE_S = 5.0  # after the day's last action, before its KPIs are read
STREAMS_GRACE_S = 3  # on stopping, how long open live streams get to close
MAX_DRIVER_LINK_S = 86_400  # the settings' ceiling for driver_login_ttl_s


@dataclass(frozen=True)
class DemoOptions:
    speed: float = 60.0
    seed: int = 7
    orders: int = 120
    drivers: int = 6
    city: str = "monaco"
    osm: Path | None = None
    timezone: str | None = None  # an --osm extract's timezone (default UTC)
    host: str = "127.0.0.1"
    port: int = 8000
    database_url: str | None = None
    # Where this run's SQLite database and log go (a new temporary directory if None).
    directory: Path | None = None
    # Doorstep's data directory for the demo: the road graphs and street index built from the
    # extract (kept, so the next demo starts faster) and the secret key. Default: the demo/
    # folder of the usual data directory (never its database).
    data_dir: Path | None = None


@dataclass(frozen=True)
class TrackingPick:
    """A recipient's tracking page and why it is worth opening."""

    label: str
    reference: str
    url: str


@dataclass(frozen=True)
class DemoLinks:
    base_url: str
    console: str  # one-time sign-in, straight to the dispatch map
    console_email: str
    console_password: str
    tracking: list[TrackingPick]
    driver_name: str
    driver: str  # one-time sign-in to the driver app
    driver_code: str
    api_docs: str
    analytics: str = ""
    city: str = ""
    attribution: str = ""


@dataclass(frozen=True)
class DemoSnapshot:
    """What the live display shows, read in one go."""

    progress: Progress
    city: str
    timezone: str
    speed: float
    messages: list[SinkMessage]  # the latest e-mails and SMS to recipients, newest last
    webhooks: int  # webhook deliveries received so far
    last_webhook: str  # the latest one's event type
    day_over: bool
    error: str | None
    report: str | None = None  # the day's headline KPIs, once it is over


@dataclass
class _Parts:
    """What a running demo holds, to stop in reverse order."""

    directory: Path | None = None
    sinks: Sinks | None = None
    runtime: Runtime | None = None
    server: uvicorn.Server | None = None
    server_thread: threading.Thread | None = None
    http: httpx.Client | None = None
    ticker: threading.Thread | None = None
    extra: list[Callable[[], None]] = field(default_factory=list)


def demo_data_dir() -> Path:
    """``demo/`` inside Doorstep's usual data directory (``DOORSTEP_DATA_DIR``, else
    ``$XDG_DATA_HOME/doorstep``, else ``~/.local/share/doorstep``)."""
    configured = os.environ.get("DOORSTEP_DATA_DIR")
    if configured:
        return Path(configured) / "demo"
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "doorstep" / "demo"


def demo_directory() -> Path:
    """A new directory for one demo's database and secret key (kept after the demo ends, so
    its day can be looked at again)."""
    return Path(tempfile.mkdtemp(prefix="doorstep-demo-"))


def _listening_socket(host: str, port: int) -> socket.socket:
    """Bound before the server starts, so a port already in use is reported at once."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise DemoError(
            f"cannot listen on {host}:{port} ({exc.strerror}); choose another with --port"
        ) from exc
    sock.listen(128)
    sock.setblocking(False)
    return sock


def _local_address(host: str, port: int) -> str:
    """How this process reaches the server (a wildcard address is reached on loopback)."""
    if host in ("0.0.0.0", ""):  # noqa: S104 - compared, not bound
        host = "127.0.0.1"
    elif host == "::":
        host = "[::1]"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


class DemoError(Exception):
    """The demo cannot start (a port in use, a missing extract...): said in one sentence."""


class Demo:
    """A context manager: :meth:`start` brings the day up and answers the links; leaving the
    ``with`` (or :meth:`stop`) stops the day, the server and the sinks, in that order."""

    def __init__(
        self, options: DemoOptions, *, on_step: Callable[[str], None] | None = None
    ) -> None:
        self.options = options
        self._on_step = on_step or (lambda _text: None)
        self._parts = _Parts()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._error: str | None = None
        self._day_over = False
        self._report: str | None = None
        self._sim: DaySimulation | None = None
        self._clock: SimulatedClock | None = None
        self.scenario: Scenario | None = None
        self.links: DemoLinks | None = None

    def __enter__(self) -> Demo:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- where the data is ----------------------------------------------------------------

    @property
    def database_url(self) -> str:
        runtime = self._parts.runtime
        if runtime is None:
            return self.options.database_url or ""
        return runtime.engine.url.render_as_string(hide_password=True)

    @property
    def directory(self) -> Path | None:
        return self._parts.directory

    # --- starting -------------------------------------------------------------------------

    def start(self) -> DemoLinks:
        """Serve Doorstep, set the day up, put the clock just before the first shift, start
        the day and answer the links to print."""
        from doorstep.clock import SimulatedClock
        from doorstep.simulator.sinks import Sinks

        options = self.options
        sock = _listening_socket(options.host, options.port)
        try:
            clock = SimulatedClock(datetime.now(UTC), options.speed)
            self._clock = clock
            self._parts.sinks = sinks = Sinks(clock)
            sinks.start()
            runtime = self._runtime(clock, sinks)
            self._serve(runtime, sock)
        except BaseException:
            sock.close()
            raise
        self._on_step(
            f"Booking {options.orders} orders for {options.drivers} drivers and planning the day"
        )
        sim = self._day(runtime, sinks)
        scenario = sim.setup()
        self.scenario = scenario
        http = self._parts.http
        assert http is not None
        self._on_step("Playing the early morning (same-day orders, changes of plan)")
        first = _first_departure(http, scenario, _published_routes(http, scenario))
        _catch_up(sim, clock, first - LEAD)
        # Chosen now, so the morning's instructions and changes of plan count.
        links = self._links(runtime, scenario, _published_routes(http, scenario))
        self.links = links
        self._sim = sim
        ticker = threading.Thread(target=self._tick, name="doorstep-demo-day", daemon=True)
        self._parts.ticker = ticker
        ticker.start()
        return links

    def _runtime(self, clock: SimulatedClock, sinks: Sinks) -> Runtime:
        from doorstep.db.engine import make_engine
        from doorstep.runtime import Runtime
        from doorstep.settings import Settings
        from doorstep.simulator.day import simulation_settings

        options = self.options
        directory = options.directory or demo_directory()
        self._parts.directory = directory
        database_url = options.database_url or f"sqlite:///{directory / 'doorstep.sqlite3'}"
        self._on_step("Starting Doorstep")
        base = Settings(
            data_dir=options.data_dir or demo_data_dir(),
            database_url=database_url,
            host=options.host,
            port=options.port,
        )
        settings = simulation_settings(
            self.day_config(),
            base,
            base_url=_local_address(options.host, options.port),
            log_level="WARNING",
            smtp_url=sinks.smtp_url,
            driver_login_ttl_s=min(
                MAX_DRIVER_LINK_S, int(LINK_WALL_TTL.total_seconds() * max(1.0, options.speed))
            ),
            # The worker looks for due messages about once a simulated minute, whatever the
            # speed, so an "out for delivery" is not stale by the time it is sent.
            worker_poll_s=min(1.0, max(0.05, 60.0 / max(1.0, options.speed))),
        )
        runtime = Runtime(settings=settings, clock=clock, engine=make_engine(database_url))
        self._parts.runtime = runtime
        return runtime

    def _serve(self, runtime: Runtime, sock: socket.socket) -> None:
        import httpx
        import uvicorn

        from doorstep.web.app import create_app

        app = create_app(runtime)  # migrates the new database
        # Open browser tabs keep live streams (SSE) open: Ctrl-C must not wait for them.
        config = uvicorn.Config(
            app,
            log_config=None,  # Doorstep's log goes where the command sends it
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=STREAMS_GRACE_S,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="doorstep-demo-server", daemon=True
        )
        self._parts.server, self._parts.server_thread = server, thread
        self._parts.extra.append(sock.close)
        thread.start()
        deadline = time.monotonic() + 60
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise DemoError("Doorstep did not start serving; see the messages above")
            time.sleep(0.02)
        self._parts.http = httpx.Client(base_url=runtime.settings.base_url, timeout=120)

    def _day(self, runtime: Runtime, sinks: Sinks) -> DaySimulation:
        from doorstep.simulator.day import DaySimulation

        assert self._parts.http is not None
        return DaySimulation(self.day_config(), runtime, self._parts.http, sinks)

    def day_config(self) -> DayConfig:
        from doorstep.simulator.day import DayConfig

        options = self.options
        return DayConfig(
            orders=options.orders,
            drivers=options.drivers,
            seed=options.seed,
            city=options.city,
            osm=options.osm,
            timezone=options.timezone,
        )

    # --- the links ------------------------------------------------------------------------

    def _links(
        self, runtime: Runtime, scenario: Scenario, routes: list[dict[str, Any]]
    ) -> DemoLinks:
        http = self._parts.http
        assert http is not None
        headers = _auth(scenario)
        base = runtime.settings.base_url
        picks = _tracking_picks(http, scenario, routes)
        driver_id = _first_driver(routes) or scenario.driver_ids[0]
        answer = http.post(f"/v1/drivers/{driver_id}/login-link", headers=headers)
        answer.raise_for_status()
        driver_link = answer.json()
        driver = http.get(f"/v1/drivers/{driver_id}", headers=headers)
        driver.raise_for_status()
        console, email, password = self._console_link(runtime, scenario)
        return DemoLinks(
            base_url=base,
            console=console,
            console_email=email,
            console_password=password,
            tracking=picks,
            driver_name=str(driver.json().get("name") or driver_id),
            driver=str(driver_link["url"]),
            driver_code=str(driver_link["code"]),
            api_docs=f"{base}/docs",
            analytics=f"{base}/console/analytics",
            city=scenario.city,
            attribution=scenario.attribution,
        )

    def _console_link(self, runtime: Runtime, scenario: Scenario) -> tuple[str, str, str]:
        """An owner for the demo merchant with a random password, and a one-time link for them
        that opens the dispatch map: the link, the e-mail and the password."""
        from sqlalchemy import select

        from doorstep.db.engine import transaction
        from doorstep.domain.accounts.login_links import issue_login_link
        from doorstep.domain.accounts.models import Merchant, Role, User
        from doorstep.domain.accounts.users import create_user

        password = secrets.token_urlsafe(12)
        ttl = LINK_WALL_TTL * max(1.0, self.options.speed)
        with transaction(runtime.sessions) as session:
            merchant = session.get(Merchant, scenario.merchant_id)
            assert merchant is not None
            email = DEMO_EMAIL
            if session.scalar(select(User.id).where(User.email == email)) is not None:
                # A database given with --database-url that already had a demo: e-mails are
                # unique across merchants.
                email = email.replace("@", f"+{merchant.id[-8:].lower()}@")
            user = create_user(
                session, runtime.clock, merchant, email, "Demo Dispatcher", Role.OWNER, password
            )
            issued = issue_login_link(
                session, runtime.clock, user, base_url=runtime.settings.base_url, ttl=ttl
            )
        return f"{issued.url}?next=/console/dispatch", email, password

    # --- running --------------------------------------------------------------------------

    def _tick(self) -> None:
        """Advance the day to the clock's "now" every ~100 ms until it is over or stopped."""
        sim, clock = self._sim, self._clock
        assert sim is not None and clock is not None
        while not self._stop.is_set():
            try:
                sim.advance(clock.now())
                if sim.finished():
                    with self._lock:
                        self._day_over = True
                    # The last messages leave the outbox within a few seconds; then the day
                    # is judged by Doorstep's own analytics.
                    if not self._stop.wait(SETTLE_S):
                        card = self._report_card()
                        with self._lock:
                            self._report = card
                    return
            except Exception as exc:  # shown on the display; the server keeps serving
                log.exception("the simulated day stopped")
                with self._lock:
                    self._error = f"{type(exc).__name__}: {exc}"
                return
            self._stop.wait(TICK_S)

    def _report_card(self) -> str:
        """The day's headline KPIs, from the same analytics as ``/console/analytics``."""
        from doorstep.domain.analytics import kpi_report

        runtime, scenario, clock = self._parts.runtime, self.scenario, self._clock
        assert runtime is not None and scenario is not None and clock is not None
        with runtime.read_sessions() as session, session.begin():
            kpis = kpi_report(
                session, scenario.merchant_id, scenario.day, scenario.day, clock.now()
            )
        return report_card(
            kpis.on_time_rate,
            kpis.first_attempt_rate,
            kpis.late_warned_share,
            kpis.messages_per_delivery,
        )

    def snapshot(self, last: int = 6) -> DemoSnapshot:
        """The day's figures (read from Doorstep's database), the latest messages to recipients
        and the webhooks the merchant's endpoint received."""
        sim, scenario, sinks = self._sim, self.scenario, self._parts.sinks
        assert sim is not None and scenario is not None and sinks is not None
        with self._lock:
            day_over, error, report = self._day_over, self._error, self._report
        received = sinks.messages()
        hooks = [m for m in received if m.channel == "webhook"]
        return DemoSnapshot(
            progress=sim.progress(),
            city=scenario.city,
            timezone=scenario.timezone,
            speed=self.options.speed,
            messages=[m for m in received if m.channel != "webhook"][-last:],
            webhooks=len(hooks),
            last_webhook=hooks[-1].subject if hooks else "",
            day_over=day_over,
            report=report,
            error=error,
        )

    # --- stopping -------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop the day, then the server (its worker and ingest flush), the sinks and the
        database; safe to call twice and after a failed start."""
        parts = self._parts
        self._stop.set()
        if parts.ticker is not None:
            parts.ticker.join(timeout=30)
            parts.ticker = None
        if parts.server is not None:
            parts.server.should_exit = True
            if parts.server_thread is not None:
                parts.server_thread.join(timeout=30)
            parts.server = parts.server_thread = None
        if parts.http is not None:
            parts.http.close()
            parts.http = None
        if parts.sinks is not None:
            parts.sinks.close()
            parts.sinks = None
        for close in parts.extra:
            close()
        parts.extra.clear()
        if parts.runtime is not None:
            parts.runtime.close()


# --- what to show -------------------------------------------------------------------------


def report_card(
    on_time: float | None,
    first_attempt: float | None,
    late_warned: float | None,
    messages_per_delivery: float | None,
) -> str:
    """One line of the day's KPIs ("n/a" where there was nothing to count)."""

    def share(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.0%}"

    per = "n/a" if messages_per_delivery is None else f"{messages_per_delivery:.1f}"
    return (
        f"on time {share(on_time)}, first attempt {share(first_attempt)}, late deliveries "
        f"warned {share(late_warned)}, {per} messages per delivery"
    )


def _catch_up(sim: DaySimulation, clock: SimulatedClock, until: datetime) -> None:
    """Play every action due before ``until`` at once, each at its own time (the clock is set
    to it), then put the clock at ``until``: the quiet early hours take seconds, not minutes."""
    while (due := sim.next_due()) is not None and due < until:
        if clock.now() < due:
            clock.set(due)
        sim.advance(due)
    if clock.now() < until:  # never back: the day happened up to now
        clock.set(until)


def _auth(scenario: Scenario) -> dict[str, str]:
    return {"Authorization": f"Bearer {scenario.api_key}"}


def _first_departure(
    http: httpx.Client, scenario: Scenario, routes: list[dict[str, Any]]
) -> datetime:
    """When the first driver sets off: the start of the earliest shift that has a route (the
    day's start if nothing is planned)."""
    planned = {str(r["shift_id"]) for r in routes}
    starts: list[datetime] = []
    after: str | None = None
    while True:
        params: dict[str, str | int] = {
            "date": scenario.day.isoformat(),
            "depot_id": scenario.depot_id,
            "limit": 100,
        }
        answer = http.get(
            "/v1/shifts", params={**params, **({"after": after} if after else {})},
            headers=_auth(scenario),
        )  # fmt: skip
        answer.raise_for_status()
        page = answer.json()
        starts += [
            datetime.fromisoformat(s["start_at"]) for s in page["items"] if s["id"] in planned
        ]
        after = page.get("next_cursor")
        if not after:
            break
    return min(starts) if starts else scenario.starts_at


def _published_routes(http: httpx.Client, scenario: Scenario) -> list[dict[str, Any]]:
    """Every driver's routes of the day, earliest start first."""
    routes: list[dict[str, Any]] = []
    for driver_id in scenario.driver_ids:
        answer = http.get(
            f"/v1/drivers/{driver_id}/route",
            params={"date": scenario.day.isoformat()},
            headers=_auth(scenario),
        )
        if answer.status_code == 404:
            continue
        answer.raise_for_status()
        routes.extend(r for r in answer.json()["routes"] if r["stops"])
    far = datetime.max.replace(tzinfo=UTC)

    def start(route: dict[str, Any]) -> tuple[datetime, str]:
        at = route.get("start_at")
        return (datetime.fromisoformat(at) if at else far, str(route["id"]))

    return sorted(routes, key=start)


def _first_driver(routes: list[dict[str, Any]]) -> str | None:
    return str(routes[0]["driver"]["id"]) if routes else None


def _tracking_picks(
    http: httpx.Client, scenario: Scenario, routes: list[dict[str, Any]]
) -> list[TrackingPick]:
    """Three tracking pages worth watching: a stop early on the first route to leave (its
    driver shows on the map from the moment the route starts), the day's last planned stop,
    and one whose recipient gave instructions or must give a PIN."""
    tz = ZoneInfo(scenario.timezone)
    urls = scenario.tracking_urls
    chosen: list[TrackingPick] = []
    taken: set[str] = set()

    def add(label: str, stop: dict[str, Any]) -> None:
        order_id = str(stop["order_id"])
        if order_id in taken or order_id not in urls:
            return
        taken.add(order_id)
        chosen.append(TrackingPick(label, str(stop["reference"]), urls[order_id]))

    def when(stop: dict[str, Any]) -> str:
        at = stop.get("planned_arrival")
        if not at:
            return ""
        return datetime.fromisoformat(at).astimezone(tz).strftime("%H:%M")

    stops = [s for route in routes for s in route["stops"]]
    if routes:
        first = routes[0]["stops"]
        # The 4th stop (or the last of a short route): the driver is on its map at once and
        # for the longest while before arriving.
        early = first[min(3, len(first) - 1)]
        vehicle = str(routes[0]["vehicle"].get("profile") or "van").replace("_", " ")
        add(f"early: stop {early['sequence']} of the first {vehicle} out, due {when(early)}", early)
    timed = [s for s in stops if s.get("planned_arrival")]
    if timed:
        late = max(timed, key=lambda s: (s["planned_arrival"], s["order_id"]))
        add(f"late in the day, due {when(late)}", late)
    for stop in stops:
        if len(chosen) >= 3:
            break
        if stop["order_id"] in taken:
            continue
        answer = http.get(f"/v1/orders/{stop['order_id']}", headers=_auth(scenario))
        if answer.status_code != 200:
            continue
        order = answer.json()
        if order.get("requires_pin"):
            add(f"asks for a PIN at the door, due {when(stop)}", stop)
        elif order.get("instructions"):
            add(f"with instructions for the driver, due {when(stop)}", stop)
    for stop in sorted(timed, key=lambda s: (s["planned_arrival"], s["order_id"])):
        if len(chosen) >= 3:
            break
        add(f"due {when(stop)}", stop)
    for order_id in scenario.order_ids:  # no plan at all: any booked order
        if len(chosen) >= 3:
            break
        if order_id in urls and order_id not in taken:
            taken.add(order_id)
            chosen.append(TrackingPick("booked", order_id, urls[order_id]))
    return chosen
