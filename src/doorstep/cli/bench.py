"""``doorstep bench ...``: benchmarks that print figures (never timed tests).

Each benchmark's module is imported only when it runs (see :mod:`doorstep.cli.lazy`)."""

from __future__ import annotations

import typer

from doorstep.cli.lazy import lazy_group

bench_app = typer.Typer(
    help="Benchmarks that print figures.",
    no_args_is_help=True,
    cls=lazy_group(
        {
            "api": ("doorstep.cli.bench_api:api", "Requests/s, latency and server CPU of the API."),
            "api-calls": (
                "doorstep.cli.bench_api_calls:api_calls",
                "Python calls and CPU per API request, in process, without HTTP.",
            ),
            "page-calls": (
                "doorstep.cli.bench_page_calls:page_calls",
                "Pool hand-offs, CPU and 64-at-once wall time per console request.",
            ),
            "routing": (
                "doorstep.cli.bench_routing:routing",
                "Gap to best-known Solomon solutions, Doorstep vs OR-Tools.",
            ),
            "matrix": ("doorstep.cli.bench_matrix:matrix", "Road-graph build and matrix times."),
            "import": ("doorstep.cli.bench_import:import_", "One large CSV import."),
            "plan": ("doorstep.cli.bench_plan:plan", "A day's plan against a long reference."),
            "tracking": (
                "doorstep.cli.bench_tracking:tracking",
                "OsmAnd positions/s against /healthz in the same run, on PostgreSQL.",
            ),
            "slots": ("doorstep.cli.bench_slots:slots", "Checkout quote latency p50/p95."),
            "eta": (
                "doorstep.cli.bench_eta:eta",
                "ETA error and window coverage per horizon on seeded drives.",
            ),
            "notify": (
                "doorstep.cli.bench_notify:notify",
                "Messages/s from event to SMTP and webhook receiver, 1 and 2 workers.",
            ),
            "live": (
                "doorstep.cli.bench_live:live",
                "Position -> tracking page SSE latency with N pages open.",
            ),
        }
    ),
)
