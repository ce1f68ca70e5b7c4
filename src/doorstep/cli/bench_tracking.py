"""``doorstep bench tracking``: positions/s a server takes, against its trivial endpoint."""

from __future__ import annotations

import json
import math
import sys

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from doorstep.bench.http_load import MAX_CONCURRENCY, MAX_REQUESTS
from doorstep.bench.local_server import DEFAULT_POSTGRES_URL
from doorstep.bench.tracking import TARGET_RATIO, TrackingBenchRun, run_tracking_bench

_console = Console() if sys.stdout.isatty() else Console(width=120)
_err = Console(stderr=True)


def _fmt(value: float, digits: int) -> str:
    return "-" if math.isnan(value) else f"{value:,.{digits}f}"


def _table(run: TrackingBenchRun) -> Table:
    table = Table(
        title=f"{run.database}: {run.requests} requests per endpoint, concurrency "
        f"{run.concurrency}, {run.devices} devices",
        title_justify="left",
        caption=f"ratio: req/s against GET /healthz in the same run (target for positions: "
        f">= {TARGET_RATIO:.1f}); srv CPU: the server process's CPU time per request",
        caption_justify="left",
    )
    table.add_column("endpoint", no_wrap=True)
    for column in ("req/s", "p50 ms", "p99 ms", "errors", "ratio", "srv CPU ms/req"):
        table.add_column(column, justify="right")
    for r in run.results:
        table.add_row(
            r.name,
            _fmt(r.rps, 0),
            _fmt(r.p50_ms, 1),
            _fmt(r.p99_ms, 0),
            str(r.errors) if not r.errors else f"[red]{r.errors}[/]",
            _fmt(run.ratio(r.name), 2),
            _fmt(r.server_cpu_ms_per_request, 2),
        )
    return table


def tracking(
    requests: int = typer.Option(
        5000, min=1, max=MAX_REQUESTS, help="Measured requests per endpoint"
    ),
    concurrency: int = typer.Option(16, min=1, max=MAX_CONCURRENCY, help="Requests in flight"),
    devices: int = typer.Option(50, min=1, max=10_000, help="Drivers sending positions"),
    database_url: str = typer.Option(
        DEFAULT_POSTGRES_URL,
        help="PostgreSQL server to create a scratch database on (or a new SQLite file URL)",
    ),
    json_form: bool = typer.Option(True, help="Also measure Traccar Client's JSON form"),
    port: int = typer.Option(0, min=0, max=65535, help="Server port (0: a free one)"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table"),
    pages: int = typer.Option(
        0, min=0, max=5000, help="Then time position -> SSE with this many pages (bench live)"
    ),
) -> None:
    """Start one server on a scratch database and measure OsmAnd positions/s (query form, and
    Traccar Client's JSON form) against GET /healthz in the same run; then count the stored
    positions after a clean stop.

    With --pages N, then run ``doorstep bench live --pages N --positions 50`` on the same
    database server and print its position -> SSE latency too."""
    if not as_json:
        _err.print(f"[dim]benchmarking position ingest on {escape(database_url)}...[/]")
    try:
        run = run_tracking_bench(
            database_url,
            requests=requests,
            concurrency=concurrency,
            devices=devices,
            json_form=json_form,
            port=port,
            live_pages=pages,
        )
    except (RuntimeError, ValueError, OSError) as exc:
        _err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from exc
    if as_json:
        typer.echo(json.dumps(run.as_dict(), indent=2))
    else:
        _console.print(_table(run))
        _console.print(
            f"positions sent {run.positions_sent:,}, stored {run.positions_stored:,} "
            "(after a clean stop)",
            highlight=False,
        )
        sse = run.sse
        if sse is None:
            _console.print("position -> SSE event: not measured (--pages N)", highlight=False)
        else:
            _console.print(
                f"position -> SSE event with {sse['pages']:,} pages (bench live): p50 "
                f"{_fmt(sse['p50_ms'] or math.nan, 1)} ms, p99 {_fmt(sse['p99_ms'] or math.nan, 1)}"
                f" ms (target < 250 ms), {sse['missed']:,} missed of "
                f"{sse['deliveries'] + sse['missed']:,}",
                highlight=False,
            )
        for r in run.results:
            if r.first_error:
                _err.print(f"first error on {r.name}: {r.first_error}", markup=False)
    if any(r.errors for r in run.results) or run.positions_stored != run.positions_sent:
        raise typer.Exit(1)
