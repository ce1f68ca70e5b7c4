"""``doorstep bench eta``: ETA error and window coverage on seeded drives over Monaco."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from doorstep.bench.eta import EtaBenchResult, run_eta_bench
from doorstep.routing.travel.factory import default_cache_dir
from doorstep.settings import Settings

TARGETS = (
    "coverage of the window between 0.87 and 0.95 at every horizon; "
    "p90 error 1 stop away <= 5 min; window shown 30 min before arrival <= 20 min wide"
)


def eta(
    routes: int = typer.Option(6, "--routes", min=1, help="Routes (vans) per day"),
    stops: int = typer.Option(14, "--stops", min=2, help="Stops per route"),
    warmup_days: int = typer.Option(
        3, "--warmup-days", min=0, help="Days driven first to build the error history"
    ),
    measured_days: int = typer.Option(
        1, "--measured-days", min=1, help="Days measured after the warm-up (more: less noise)"
    ),
    seed: int = typer.Option(7, "--seed", help="Seed of the days and the drives"),
    refresh_s: float = typer.Option(
        30.0, "--refresh-s", min=1.0, help="Simulated seconds between position batches"
    ),
    gpx_every: int = typer.Option(
        3, "--gpx-every", min=0, help="Replay every Nth measured route from GPX (0: none)"
    ),
    osm: str = typer.Option(
        "monaco", "--osm", help="OSM extract: 'monaco' (shipped), 'helsinki' or a file path"
    ),
    database_url: str | None = typer.Option(
        None, "--database-url", help="A new SQLite file URL [default: a temporary one]"
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout"),
) -> None:
    """Drive warm-up days, then a measured day, and print the ETA's error and its window's
    coverage and width per horizon (route start, 5 stops, 1 stop, 30 min before arrival)."""
    err = Console(stderr=True)
    with Progress(
        TextColumn("{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=as_json,
    ) as bar:
        task = bar.add_task("eta", total=None)

        def progress(name: str, done: int, total: int) -> None:
            bar.update(task, description=name, completed=done, total=total)

        result = run_eta_bench(
            routes=routes,
            stops=stops,
            warmup_days=warmup_days,
            measured_days=measured_days,
            seed=seed,
            refresh_s=refresh_s,
            gpx_every=gpx_every,
            source=osm,
            database_url=database_url,
            cache_dir=default_cache_dir(Settings()) if osm == "monaco" else None,
            progress=progress,
        )
    if as_json:
        typer.echo(json.dumps(result.figures()))
    else:
        Console().print(_table(result))


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _table(result: EtaBenchResult) -> Table:
    table = Table(
        title=(
            f"ETA on {result.source}: {result.routes_per_day} routes x "
            f"{result.stops_per_route} stops, {result.warmup_days} warm-up day(s) + "
            f"{result.measured_days} measured, "
            f"seed {result.seed}, {result.confidence:.0%} window"
        )
    )
    for name, justify in [
        ("horizon", "left"),
        ("n", "right"),
        ("median |err| min", "right"),
        ("p90 |err| min", "right"),
        ("bias min", "right"),
        ("coverage", "right"),
        ("mean width min", "right"),
    ]:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for h in result.horizons:
        table.add_row(
            h.horizon,
            str(h.n),
            _fmt(h.median_abs_error_min),
            _fmt(h.p90_abs_error_min),
            _fmt(h.mean_error_min),
            _fmt(h.coverage, 3),
            _fmt(h.mean_width_min, 1),
        )
    table.caption = (
        f"{result.measured_stops} measured stops ({result.gpx_routes} route(s) replayed from "
        f"GPX); late arrivals {result.late_arrivals}, warned before the window ended "
        f"{result.late_warned}; {result.eta_events_per_stop} eta_updated events per stop; "
        f"{result.refreshes} refreshes, {result.refresh_ms_mean} ms each; "
        f"{result.seconds} s in all.\nTargets: {TARGETS}."
    )
    return table


__all__ = ["eta"]
