"""``doorstep bench slots``: checkout quote latency (p50/p95) against a planned day of 300 and
1,000 stops (targets: p95 under 100 ms at 300 stops, under 300 ms at 1,000)."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from doorstep.bench.slots import SlotsBenchResult, run_slots_bench

_console = Console()
_err = Console(stderr=True)
TARGET_P95_MS = {300: 100.0, 1000: 300.0}


def slots(
    stops: Annotated[
        list[int] | None, typer.Option("--stops", help="Stops planned for the day; repeat")
    ] = None,
    quotes: Annotated[int, typer.Option(min=1, max=100_000, help="Quotes timed per size")] = 200,
    time_limit: Annotated[
        float, typer.Option("--time-limit", min=0.1, help="Planning seconds per size")
    ] = 5.0,
    seed: Annotated[int, typer.Option(help="Seed of the day and the addresses")] = 1,
    rebookings: Annotated[
        int,
        typer.Option(
            min=0, max=10_000, help="Reschedules into the published plan timed per size (CPU)"
        ),
    ] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Time checkout quotes (zones, calendar, counters and the insertion check against the
    published plan) on a scratch database."""
    results: list[SlotsBenchResult] = []
    for size in stops or [300, 1000]:
        results.append(
            run_slots_bench(
                size,
                quotes=quotes,
                time_limit_s=time_limit,
                seed=seed,
                rebookings=rebookings,
                on_phase=lambda name: _err.print(f"[dim]{name}[/dim]"),
            )
        )
    if as_json:
        typer.echo(json.dumps([asdict(r) for r in results], indent=2))
        return
    table = Table(title="Checkout quotes against the day's plan")
    for column in ("stops", "planned", "routes", "plan s", "quotes", "windows/quote"):
        table.add_column(column, justify="right")
    for column in ("p50 ms", "p95 ms", "max ms", "target p95", "rebook CPU p50/p95 ms"):
        table.add_column(column, justify="right")
    for r in results:
        target = TARGET_P95_MS.get(r.stops)
        table.add_row(
            str(r.stops),
            str(r.planned),
            str(r.routes),
            f"{r.plan_s:.1f}",
            str(r.quotes),
            f"{r.windows_per_quote:g}",
            f"{r.p50_ms:.1f}",
            f"{r.p95_ms:.1f}",
            f"{r.max_ms:.1f}",
            (f"< {target:g} " + ("met" if r.p95_ms < target else "MISSED")) if target else "-",
            (
                f"{r.rebook_cpu_p50_ms:.0f}/{r.rebook_cpu_p95_ms:.0f}"
                if r.rebook_cpu_p50_ms is not None and r.rebook_cpu_p95_ms is not None
                else "-"
            ),
        )
    _console.print(table)
