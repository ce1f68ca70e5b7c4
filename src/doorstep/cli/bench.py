"""``doorstep bench ...``: benchmarks that print figures (never timed tests)."""

from __future__ import annotations

import typer

bench_app = typer.Typer(help="Benchmarks that print figures.", no_args_is_help=True)
