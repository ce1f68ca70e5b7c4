"""``doorstep bench live``: GPS fix → tracking page (SSE) latency with many pages open."""

from __future__ import annotations

import json
import math
import os

import typer
from rich.console import Console

from doorstep.bench.live import MAX_PAGES, MAX_POSITIONS, run_live_bench
from doorstep.bench.local_server import DEFAULT_POSTGRES_URL

_console = Console()


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:,.1f} ms"


def live(
    pages: int = typer.Option(100, min=1, max=MAX_PAGES, help="Tracking streams open at once"),
    positions: int = typer.Option(20, min=1, max=MAX_POSITIONS, help="GPS fixes per route"),
    orders: int = typer.Option(
        1, min=1, max=MAX_PAGES, help="Orders the pages watch (five to a route)"
    ),
    interval_ms: int = typer.Option(500, min=10, max=60_000, help="Time between fixes"),
    clients: int = typer.Option(2, min=1, max=16, help="Processes holding the pages"),
    postgres: bool = typer.Option(False, "--postgres", help=f"Use {DEFAULT_POSTGRES_URL}"),
    database_url: str | None = typer.Option(None, help="PostgreSQL server URL (or SQLite file)"),
    redis_url: str | None = typer.Option(None, help="Send live messages through this Redis"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON"),
) -> None:
    """Start one server, open PAGES tracking streams from CLIENTS separate processes, post
    POSITIONS GPS fixes per route to /ingest/osmand, and print the time from each POST to the
    fix's arrival at each page (p50/p95/p99/max) and how many arrivals were missed."""
    url = database_url or (DEFAULT_POSTGRES_URL if postgres else None)
    result = run_live_bench(
        pages=pages,
        positions=positions,
        orders=orders,
        database_url=url,
        redis_url=redis_url,
        interval_ms=interval_ms,
        clients=clients,
    )
    if as_json:
        typer.echo(json.dumps(result.as_dict()))
        return
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    _console.print(
        f"{result.database}, {result.bus} bus, one server process; {result.pages} pages on "
        f"{result.orders} orders ({result.routes} routes) held by {result.client_processes} "
        f"client processes; {result.positions} fixes per route every {result.interval_ms} ms"
    )
    _console.print(
        f"{result.deliveries} deliveries, {result.missed} missed; POST /ingest/osmand p50 "
        f"{_ms(result.post_p50_ms)}, p99 {_ms(result.post_p99_ms)}; last page after the first "
        f"p99 {_ms(result.spread_p99_ms)}; server CPU {result.server_cpu_ms_per_fix:,.1f} ms "
        "per fix"
    )
    _console.print(
        f"fix posted -> SSE event received: p50 {_ms(result.p50_ms)}, p95 {_ms(result.p95_ms)}, "
        f"p99 {_ms(result.p99_ms)}, max {_ms(result.max_ms)} (target p99 < 250 ms with 1,000 "
        f"pages); load average {load}"
    )
