"""``doorstep bench notify``: outbox throughput with 1 and 2 workers, and SIGKILL losses."""

from __future__ import annotations

import json
import math
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from doorstep.bench.local_server import DEFAULT_POSTGRES_URL
from doorstep.bench.notify import run_notify_bench

_console = Console(width=120)


def _finite(figures: dict[str, Any]) -> dict[str, Any]:
    """NaN (a figure not measured here, e.g. database CPU on SQLite) as JSON null."""
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in figures.items()}


def notify(
    orders: int = typer.Option(1000, min=1, max=100_000, help="Orders per run (2 messages each)"),
    workers: str = typer.Option("1,2", help="Worker process counts to measure, comma-separated"),
    database_url: str = typer.Option(
        DEFAULT_POSTGRES_URL, help="PostgreSQL server (a scratch database is made) or sqlite:///"
    ),
    kill: bool = typer.Option(True, help="Also SIGKILL two workers mid-run and count losses"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON"),
) -> None:
    """Messages/s from event to accepted by a local SMTP server and webhook receiver."""
    counts = [int(w) for w in workers.split(",") if w.strip()]
    runs, killed = run_notify_bench(
        database_url=database_url, orders=orders, workers=counts, kill=kill
    )
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "runs": [_finite(r.__dict__) for r in runs],
                    "kill": killed.__dict__ if killed else None,
                }
            )
        )
        return
    table = Table(title=f"outbox relay, {orders} orders (e-mail + webhook each)")
    columns: tuple[str, ...] = ("workers", "messages", "received", "seconds", "msg/s")
    columns += ("CPU ms/msg: workers", "peers", "database", "start-up CPU s/worker")
    for col in columns:
        table.add_column(col, justify="right")
    for r in runs:
        table.add_row(
            str(r.workers),
            str(r.messages),
            str(r.received),
            f"{r.seconds:.2f}",
            f"{r.msgs_per_s:,.0f}",
            f"{r.worker_cpu_ms_per_msg:.2f}",
            f"{r.peer_cpu_ms_per_msg:.2f}",
            f"{r.db_cpu_ms_per_msg:.2f}",
            f"{r.worker_startup_cpu_s:.1f}",
        )
    _console.print(table)
    if killed:
        _console.print(
            f"SIGKILL of 2 workers after {killed.received_at_kill}/{killed.messages} messages: "
            f"{killed.in_flight} in flight (claimed, not recorded), {killed.sent_unrecorded} of "
            f"them already accepted; lost {killed.lost}, duplicated {killed.duplicated} "
            f"({killed.duplicated_outside_in_flight} outside the in-flight set)"
        )
