"""``doorstep bench page-calls``: threadpool hand-offs, CPU and concurrent wall time per console
request in this process (see :mod:`doorstep.bench.page_calls`)."""

from __future__ import annotations

import json
from dataclasses import asdict

import typer
from rich.console import Console
from rich.table import Table

_console = Console()


def page_calls(
    requests: int = typer.Option(100, min=10, max=10_000, help="Requests per round"),
    rounds: int = typer.Option(3, min=1, max=50, help="CPU rounds (the lowest is kept)"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table"),
) -> None:
    """Pool hand-offs (deterministic), process CPU (lowest round) and the wall time of 64
    requests at once, for a console order page, the orders list and an order's edit form,
    driven through the ASGI app on a scratch SQLite database."""
    from doorstep.bench.page_calls import CONCURRENT, run_page_calls_bench

    costs = run_page_calls_bench(requests=requests, rounds=rounds)
    if as_json:
        print(json.dumps([asdict(c) for c in costs], indent=2))
        return
    table = Table(title="Console pages in process, per request (SQLite)")
    table.add_column("request")
    table.add_column("pool hand-offs", justify="right")
    table.add_column("CPU (lowest round)", justify="right")
    table.add_column(f"{CONCURRENT} at once: wall", justify="right")
    table.add_column("errors", justify="right")
    for c in costs:
        table.add_row(
            c.name,
            f"{c.handoffs:.1f}",
            f"{c.cpu_ms:.2f} ms",
            f"{c.concurrent_wall_s:.2f} s" if c.concurrent_wall_s is not None else "-",
            str(c.concurrent_errors) if c.concurrent_errors is not None else "-",
        )
    _console.print(table)
