"""``doorstep bench routing``: the Solomon VRPTW benchmark, Doorstep against OR-Tools."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from doorstep.routing.benchmark import BenchmarkResult, run_benchmark


def routing(
    instances: Path = typer.Option(..., "--instances", help="Folder of Solomon .txt files"),
    bks: Path = typer.Option(..., "--bks", help="Best-known solutions CSV"),
    time_limit: float = typer.Option(2.0, "--time-limit", help="Seconds per instance per solver"),
    only: str | None = typer.Option(None, "--only", help="comma-separated names or glob"),
    seed: int = typer.Option(42, "--seed", help="Seed of Doorstep's optimiser"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout"),
    skip_ortools: bool = typer.Option(False, "--skip-ortools", help="Run only Doorstep's solver"),
) -> None:
    """Gap to the best-known solutions of the Solomon instances (DIMACS convention)."""
    err = Console(stderr=True)
    if not instances.is_dir():
        err.print(f"[red]error:[/] {instances} is not a folder")
        raise typer.Exit(2)
    if not bks.is_file():
        err.print(f"[red]error:[/] {bks} not found")
        raise typer.Exit(2)
    with Progress(
        TextColumn("{task.description:<8}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=as_json,
    ) as bar:
        task = bar.add_task("routing", total=None)

        def progress(name: str, done: int, total: int) -> None:
            bar.update(task, description=name or "done", completed=done, total=total)

        result = run_benchmark(
            instances,
            bks,
            time_limit_s=time_limit,
            seed=seed,
            only=only,
            with_ortools=not skip_ortools,
            progress=progress,
        )
    if not result.instances:
        err.print("[red]error:[/] no instance matched the BKS table and --only")
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps(_jsonable(dataclasses.asdict(result))))
    else:
        Console().print(_table(result))


def _jsonable(value: object) -> object:
    """NaN is not JSON: write it as null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _table(result: BenchmarkResult) -> Table:
    with_ortools = result.ortools_mean_gap_pct is not None
    table = Table(
        title=f"Solomon VRPTW, {result.time_limit_s:g} s per instance, seed {result.seed}"
    )
    table.add_column("instance")
    table.add_column("BKS", justify="right")
    table.add_column("Doorstep", justify="right")
    table.add_column("gap %", justify="right")
    table.add_column("routes", justify="right")
    if with_ortools:
        table.add_column("OR-Tools", justify="right")
        table.add_column("gap %", justify="right")
        table.add_column("routes", justify="right")
    for r in result.instances:
        row = [
            r.name,
            _fmt(r.bks, 1),
            _fmt(r.distance, 1) + ("" if r.feasible else " [red]infeasible[/]"),
            _fmt(r.gap),
            str(r.vehicles),
        ]
        if with_ortools:
            bad = "" if r.ortools_feasible else " [red]infeasible[/]"
            row += [_fmt(r.ortools_distance, 1) + bad, _fmt(r.ortools_gap), str(r.ortools_vehicles)]
        table.add_row(*row)
    table.add_section()
    mean = [f"mean ({len(result.instances)})", "", "", _fmt(result.mean_gap_pct, 3), ""]
    caption = f"Doorstep: {result.infeasible} infeasible"
    if with_ortools:
        mean += ["", _fmt(result.ortools_mean_gap_pct, 3), ""]
        caption += f"; OR-Tools: {result.ortools_infeasible} infeasible"
    table.caption = caption + " (infeasible: the checker objected or a customer was left out)"
    table.add_row(*mean, style="bold")
    return table
