"""``doorstep bench live``: position → tracking page (SSE) latency with many pages open."""

from __future__ import annotations

import json

import typer
from rich.console import Console

from doorstep.bench.live import MAX_PAGES, MAX_POSITIONS, run_live_bench
from doorstep.bench.local_server import DEFAULT_POSTGRES_URL

_console = Console()


def live(
    pages: int = typer.Option(100, min=1, max=MAX_PAGES, help="Tracking streams open at once"),
    positions: int = typer.Option(20, min=1, max=MAX_POSITIONS, help="GPS fixes written"),
    postgres: bool = typer.Option(False, "--postgres", help=f"Use {DEFAULT_POSTGRES_URL}"),
    database_url: str | None = typer.Option(None, help="PostgreSQL server URL (or SQLite file)"),
    redis_url: str | None = typer.Option(None, help="Send live messages through this Redis"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON"),
) -> None:
    """Open PAGES tracking streams on one order, write POSITIONS fixes of its route, and print
    the p50/p99/max time from a fix's commit to its arrival at the pages."""
    url = database_url or (DEFAULT_POSTGRES_URL if postgres else None)
    result = run_live_bench(pages=pages, positions=positions, database_url=url, redis_url=redis_url)
    if as_json:
        typer.echo(json.dumps(result.__dict__))
        return
    _console.print(
        f"{result.database}, {result.bus} bus: {result.pages} pages x {result.positions} "
        f"positions = {result.deliveries} deliveries, {result.missed} missed"
    )
    _console.print(
        f"position -> SSE: p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms, "
        f"max {result.max_ms:.1f} ms (target p99 < 250 ms with 1,000 pages)"
    )
