"""``doorstep bench ...``: benchmarks that print figures (never timed tests)."""

from __future__ import annotations

import typer

from doorstep.cli.bench_api import api
from doorstep.cli.bench_import import import_ as import_bench
from doorstep.cli.bench_matrix import matrix
from doorstep.cli.bench_notify import notify
from doorstep.cli.bench_plan import plan
from doorstep.cli.bench_routing import routing

bench_app = typer.Typer(help="Benchmarks that print figures.", no_args_is_help=True)
bench_app.command("api")(api)
bench_app.command("routing")(routing)
bench_app.command("matrix")(matrix)
bench_app.command("import")(import_bench)
bench_app.command("plan")(plan)
bench_app.command("notify")(notify)
