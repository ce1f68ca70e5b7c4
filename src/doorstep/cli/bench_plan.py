"""``doorstep bench plan``: plan time and quality on a synthetic operational day.

A seeded day (by default 1,000 orders with two-hour windows and 40 shifts of vans and cargo
bikes) on the real roads of an OSM extract, planned through Doorstep's own planning code at
``--time-limit`` and again at ``--reference-limit``; prints the times, the plan's figures, an
independent feasibility check and the short run's gap to the reference.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console, RenderableType
from rich.markup import escape
from rich.progress import (
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from doorstep.bench.plan import FLEETS, PlanBenchResult, RunFigures, ScenarioConfig
from doorstep.routing.travel.base import TravelTimeError

# Piped output (CI logs, files) would otherwise wrap the tables at 80 columns.
_console = Console() if sys.stdout.isatty() else Console(width=120)
_err = Console(stderr=True)


class _LimitBar(ProgressColumn):
    """A bar that fills as a search's time limit runs out (blank for untimed phases)."""

    def render(self, task: Task) -> RenderableType:
        limit = task.fields.get("limit")
        if not limit:
            return Text("")
        elapsed = task.elapsed or 0.0
        return ProgressBar(total=float(limit), completed=min(elapsed, float(limit)), width=30)


class _Phases:
    """The runner's phase callback, shown as one progress line per phase on stderr."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: TaskID | None = None

    def __call__(self, name: str, limit: float | None) -> None:
        self.done()
        self.task = self.progress.add_task(name, total=1, limit=limit)

    def done(self) -> None:
        """Mark the current phase finished."""
        if self.task is not None:
            self.progress.update(self.task, completed=1)
            self.progress.stop_task(self.task)
            self.task = None


def _hms(seconds: float) -> str:
    """``h:mm:ss``, with hours past 24 (a fleet's total driving often is)."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f} %"


def _reasons(run: RunFigures) -> str:
    if not run.unassigned_by_reason:
        return "0"
    parts = ", ".join(f"{k} {v}" for k, v in run.unassigned_by_reason.items())
    return f"{run.unassigned} ({parts})"


def _table(result: PlanBenchResult) -> Table:
    """The first seed's runs side by side, with that seed's own gaps."""
    first = result.pairs[0]
    short, ref = first.short, first.reference
    runs = [short] if ref is None else [short, ref]
    table = Table(
        title=f"Plan figures, seed {first.seed}",
        title_justify="left",
        caption="plan time: create_plan end to end (read, matrices, search, route geometry, "
        "write); the reference run reuses the first run's matrices. gap: how much the "
        "short run is worse than the reference (negative: better).",
        caption_justify="left",
    )
    table.add_column("")
    table.add_column(f"{short.time_limit_s:g} s", justify="right")
    if ref is not None:
        table.add_column(f"{ref.time_limit_s:g} s reference", justify="right")
        table.add_column("gap", justify="right")

    def row(label: str, values: list[str], gap: str = "") -> None:
        table.add_row(label, *values, *([gap] if ref is not None else []))

    row("plan time (s)", [f"{r.plan_s:.2f}" for r in runs])
    row("  matrices (s)", [f"{r.matrix_s:.2f}" for r in runs])
    row("  search (s)", [f"{r.solve_s:.2f}" for r in runs])
    row("  other (s)", [f"{r.other_s:.2f}" for r in runs])
    row("iterations", [f"{r.iterations:,}" if r.iterations is not None else "-" for r in runs])
    row("search mode", [r.search or "-" for r in runs])
    row(
        "objective",
        [f"{r.objective:,}" if r.objective is not None else "-" for r in runs],
        _pct(first.objective_gap_pct),
    )
    row(
        "driving time",
        [f"{_hms(r.driving_s)} ({r.driving_s:,} s)" for r in runs],
        _pct(first.driving_gap_pct),
    )
    row(
        "distance (km)",
        [f"{r.distance_m / 1000:,.1f}" for r in runs],
        _pct(first.distance_gap_pct),
    )
    row("routes used / shifts", [f"{r.routes_used} / {r.shifts}" for r in runs])
    row(
        "planned / orders",
        [f"{r.planned:,} / {r.orders:,}" for r in runs],
        f"{short.planned - ref.planned:+d}" if ref is not None else "",
    )
    row("unassigned", [_reasons(r) for r in runs])
    row(
        "stops in last 15 min of window",
        ["-" if r.last_15_min_pct is None else f"{r.last_15_min_pct:.1f} %" for r in runs],
    )
    row(
        "mean slack to window end",
        ["-" if r.mean_slack_min is None else f"{r.mean_slack_min:.1f} min" for r in runs],
    )
    row(
        "buffer / stops served after it",
        [f"{r.window_buffer_s // 60} min / {r.buffer_relaxed}" for r in runs],
    )
    if any(r.buffer_repair for r in runs):
        row("buffer repair", [escape(r.buffer_repair or "-") for r in runs])
    row(
        "feasible (independent check)",
        ["yes" if r.feasible else f"[red]no[/] ({len(r.violations)} problems)" for r in runs],
    )
    return table


def _repeats_table(result: PlanBenchResult) -> Table:
    short, ref = result.short, result.reference
    table = Table(
        title="Every optimiser seed (same day)",
        title_justify="left",
        caption="The verdict compares the mean objective of the short runs with the mean of "
        "the reference runs.",
        caption_justify="left",
    )
    table.add_column("seed", justify="right")
    table.add_column(f"{short.time_limit_s:g} s objective", justify="right")
    table.add_column("iterations", justify="right")
    if ref is not None:
        table.add_column(f"{ref.time_limit_s:g} s objective", justify="right")
        table.add_column("iterations", justify="right")
        table.add_column("gap", justify="right")
    table.add_column("planned", justify="right")

    def count(value: int | None) -> str:
        return "-" if value is None else f"{value:,}"

    for pair in result.pairs:
        cells = [str(pair.seed), count(pair.short.objective), count(pair.short.iterations)]
        if pair.reference is not None:
            cells += [
                count(pair.reference.objective),
                count(pair.reference.iterations),
                _pct(pair.objective_gap_pct),
            ]
        cells.append(f"{pair.short.planned:,}")
        table.add_row(*cells)
    return table


def _print_report(result: PlanBenchResult) -> None:
    s = result.scenario
    fleet = ", ".join(
        f"{n} {label.lower()}{'s' if n != 1 else ''}" for label, n in s.vehicles.items()
    )
    _console.print(f"Extract: {escape(result.extract)}")
    _console.print(
        f"{s.site} ({s.timezone}), depot at {s.depot.lat:.5f}, {s.depot.lon:.5f}: "
        f"{s.orders:,} orders ({s.parcels:,} parcels, {s.weight_kg:,.0f} kg), {s.shifts} shifts "
        f"({fleet}; room for {s.capacity_parcels:,} parcels, {s.capacity_kg:,.0f} kg)"
    )
    _console.print(
        f"Road network loaded in {result.network_s:.2f} s; scenario placed and written in "
        f"{result.scenario_s:.2f} s (neither is part of the plan time)."
    )
    _console.print(_table(result))
    several = len(result.pairs) > 1
    if several:
        _console.print(_repeats_table(result))
    for pair in result.pairs:
        for label, run in (("short", pair.short), ("reference", pair.reference)):
            if run is not None and run.violations:
                _err.print(
                    f"[red]{label} run, seed {pair.seed}:[/] {len(run.violations)} problem(s), "
                    "first ones:"
                )
                for line in run.violations[:10]:
                    _err.print(f"  {line}", markup=False, highlight=False)
    met = result.target_met
    if met is not None:
        verdict = "[green]met[/]" if met else "[red]not met[/]"
        runs = (
            f"Short runs vs references, mean of {len(result.pairs)} seeds"
            if several
            else ("Short run vs reference")
        )
        _console.print(
            f"{runs}: objective {_pct(result.objective_gap_pct)}, driving time "
            f"{_pct(result.driving_gap_pct)}; target within {result.target_pct:g} % of the "
            f"reference's objective with as many orders planned: {verdict}"
        )
    _console.print("Map data © OpenStreetMap contributors (ODbL).")


def plan(
    osm: str = typer.Option(
        "helsinki",
        "--osm",
        help="OSM extract (.osm.pbf/.osm path), or 'helsinki' for the bundled central Helsinki",
    ),
    orders: int = typer.Option(1000, min=1, max=100_000, help="Orders in the synthetic day"),
    shifts: int = typer.Option(40, min=1, max=2000, help="Shifts, each with its own vehicle"),
    fleet: str = typer.Option(
        "mixed",
        help="'mixed': vans (600 kg, 80 parcels) and cargo bikes (120 kg, 25) in turn; "
        "'vans': vans only",
    ),
    radius_km: float = typer.Option(
        0.0, min=0.0, help="Place orders within this distance of the depot (0: the whole extract)"
    ),
    seed: int = typer.Option(42, help="Seed of the scenario and of the optimiser"),
    time_limit: float = typer.Option(30.0, min=0.1, help="Time limit of the measured run (s)"),
    reference_limit: float = typer.Option(
        300.0, min=0.0, help="Time limit of the reference run (s); 0 skips it"
    ),
    database_url: str | None = typer.Option(
        None,
        help="A new SQLite file (sqlite:///PATH) or a PostgreSQL server URL to create a scratch "
        "database on (default: a temporary SQLite file)",
    ),
    cache_dir: Path | None = typer.Option(
        None,
        help="Where built road graphs are kept [default: <DOORSTEP_DATA_DIR>/cache/roads]",
    ),
    repeats: int = typer.Option(
        1,
        min=1,
        max=20,
        help="Plan the same day this many times, with optimiser seeds SEED, SEED+1, ...; the "
        "gap compares the means (one seed's result varies by about a percent)",
    ),
    window_buffer: int | None = typer.Option(
        None,
        min=0,
        max=7200,
        help="Seconds to keep before each window's end [default: DOORSTEP_PLAN_WINDOW_BUFFER_S, "
        "600]; 0 plans against the full windows",
    ),
    max_iterations: int | None = typer.Option(
        None,
        min=1,
        help="Also stop the measured run after this many search iterations: with a time limit "
        "it does not reach, the plan depends on the seed only, not on the machine's load",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables"),
) -> None:
    """Plan a synthetic day on real roads at --time-limit and at --reference-limit, and print
    the plan time (matrices + search), the plan's quality and the short run's gap."""
    from doorstep.bench.plan import run_plan_bench
    from doorstep.routing.travel.factory import default_cache_dir
    from doorstep.settings import Settings

    if fleet not in FLEETS:
        raise typer.BadParameter(f"unknown fleet {fleet!r}", param_hint="--fleet")
    config = ScenarioConfig(
        orders=orders,
        shifts=shifts,
        fleet="vans" if fleet == "vans" else "mixed",
        seed=seed,
        radius_km=radius_km,
    )
    cache = cache_dir if cache_dir is not None else default_cache_dir(Settings())
    progress = Progress(
        SpinnerColumn(finished_text="[green]✓[/]"),
        TextColumn("{task.description}"),
        _LimitBar(),
        TimeElapsedColumn(),
        console=_err,
        transient=False,
    )
    phases = _Phases(progress)
    try:
        with progress:
            result = run_plan_bench(
                osm,
                config=config,
                time_limit_s=time_limit,
                reference_limit_s=reference_limit,
                database_url=database_url,
                cache_dir=cache,
                on_phase=phases,
                repeats=repeats,
                window_buffer_s=window_buffer,
                max_iterations=max_iterations,
            )
            phases.done()
    except (TravelTimeError, ValueError, OSError) as exc:
        _err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from exc
    if as_json:
        typer.echo(json.dumps(result.as_dict(), indent=2))
    else:
        _print_report(result)
    if not result.feasible:
        raise typer.Exit(1)
