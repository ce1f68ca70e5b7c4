"""``doorstep bench api``: requests/s and latency of the HTTP API against a real server."""

from __future__ import annotations

import json
import math
import sys

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from doorstep.bench.api import ApiBenchRun, ScenarioFigures, run_api_bench
from doorstep.bench.http_load import MAX_CONCURRENCY, MAX_REQUESTS
from doorstep.bench.local_server import DEFAULT_POSTGRES_URL

# Piped output (CI logs, files) would otherwise wrap the tables at 80 columns.
_console = Console() if sys.stdout.isatty() else Console(width=120)
_err = Console(stderr=True)


def _fmt(value: float, digits: int) -> str:
    return "-" if math.isnan(value) else f"{value:,.{digits}f}"


def _target(figures: ScenarioFigures) -> str:
    if figures.cpu_target_ms is None:
        return "-"
    mark = {True: "[green]met[/]", False: "[red]missed[/]", None: "?"}[figures.meets_cpu_target]
    return f"<= {figures.cpu_target_ms:g} {mark}"


def _table(run: ApiBenchRun) -> Table:
    table = Table(
        title=f"{run.database}: {run.requests} requests per endpoint, "
        f"concurrency {run.concurrency}",
        title_justify="left",
        caption="ratios compare each endpoint with GET /healthz, measured the same way; "
        "srv CPU: the server process's CPU time per request",
        caption_justify="left",
    )
    table.add_column("endpoint", no_wrap=True)
    columns = (
        "req/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "req/s ratio",
        "p50 ratio",
        "srv CPU ms/req",
        "CPU target",
    )
    for column in columns:
        table.add_column(column, justify="right")
    for figures in run.scenarios:
        r = figures.result
        table.add_row(
            r.name,
            _fmt(r.rps, 0),
            _fmt(r.p50_ms, 1),
            _fmt(r.p99_ms, 0),
            str(r.errors) if not r.errors else f"[red]{r.errors}[/]",
            f"{_fmt(figures.rps_ratio * 100, 0)} %",
            f"{_fmt(figures.p50_ratio, 1)}x",
            _fmt(r.server_cpu_ms_per_request, 2),
            _target(figures),
        )
    return table


def api(
    requests: int = typer.Option(
        2000, min=1, max=MAX_REQUESTS, help="Measured requests per endpoint"
    ),
    concurrency: int = typer.Option(
        16,
        min=1,
        max=MAX_CONCURRENCY,
        help="Requests in flight (64: the load at which SQLite once locked up; 0 errors expected)",
    ),
    database_url: str | None = typer.Option(
        None,
        help="PostgreSQL server URL to create a scratch database on, or a new SQLite file "
        "(default: a temporary SQLite file)",
    ),
    postgres: bool = typer.Option(False, help="also run on PostgreSQL at the default local URL"),
    port: int = typer.Option(0, min=0, max=65535, help="Server port (0: a free one)"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables"),
) -> None:
    """Start a real server on a scratch database and measure GET /healthz (the baseline),
    POST /v1/orders and GET /v1/orders/{id}: requests/s, p50 and p99 latency.

    Client and server share this machine, so read the figures next to the /healthz baseline
    measured the same way."""
    targets: list[str | None] = [database_url]
    if postgres and database_url != DEFAULT_POSTGRES_URL:
        targets.append(DEFAULT_POSTGRES_URL)
    runs: list[ApiBenchRun] = []
    for target in targets:
        if not as_json:
            _err.print(f"[dim]benchmarking on {target or 'a temporary SQLite file'}...[/]")
        try:
            run = run_api_bench(target, requests=requests, concurrency=concurrency, port=port)
        except (RuntimeError, ValueError, OSError) as exc:
            _err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
            raise typer.Exit(1) from exc
        runs.append(run)
        if not as_json:
            _console.print(_table(run))
            for figures in run.scenarios:
                share = figures.result.client_cpu_share
                if share > 0.9:
                    _err.print(
                        f"note: the load generator was busy {share:.0%} of the time on "
                        f"{figures.result.name}; that figure may be limited by the client",
                        highlight=False,
                    )
                if figures.result.first_error:
                    _err.print(
                        f"first error on {figures.result.name}: {figures.result.first_error}",
                        markup=False,
                        highlight=False,
                    )
    if as_json:
        typer.echo(json.dumps({"runs": [r.as_dict() for r in runs]}, indent=2))
    if any(f.result.errors for run in runs for f in run.scenarios):
        raise typer.Exit(1)
