"""``doorstep bench api-calls``: Python calls and CPU per API request in this process, without
HTTP (see :mod:`doorstep.bench.api_calls`)."""

from __future__ import annotations

import json
from dataclasses import asdict

import typer
from rich.console import Console
from rich.table import Table

_console = Console()


def api_calls(
    requests: int = typer.Option(100, min=10, max=10_000, help="Requests per round"),
    rounds: int = typer.Option(5, min=1, max=50, help="CPU rounds (the lowest is kept)"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table"),
) -> None:
    """Python function calls (deterministic) and process CPU (lowest round) per request for a
    create, a read and /healthz, driven through the ASGI app on a scratch SQLite database."""
    from doorstep.bench.api_calls import run_api_calls_bench

    costs = run_api_calls_bench(requests=requests, rounds=rounds)
    if as_json:
        print(json.dumps([asdict(c) for c in costs], indent=2))
        return
    table = Table(title="In process, per request (SQLite)")
    table.add_column("request")
    table.add_column("Python calls", justify="right")
    table.add_column("CPU (lowest round)", justify="right")
    for c in costs:
        table.add_row(c.name, f"{c.python_calls:,.0f}", f"{c.cpu_ms:.2f} ms")
    _console.print(table)
