"""The ``doorstep`` command: thin commands over the same domain services the API uses.

Heavy modules (SQLAlchemy, Alembic, the domain, uvicorn, the benchmarks) are imported inside the
commands that use them, so ``doorstep --help`` and every command start at once."""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from doorstep.cli.bench import bench_app
from doorstep.cli.lazy import lazy_group

if TYPE_CHECKING:
    from doorstep.runtime import Runtime

app = typer.Typer(
    name="doorstep",
    help="Doorstep: self-hosted last-mile delivery built around the recipient.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=lazy_group(
        {
            "user": ("doorstep.cli.users:user_app", "Manage console users."),
            "geocode": (
                "doorstep.cli.geocode:geocode",
                "Geocode an address as orders are, or build the offline index.",
            ),
            "worker": (
                "doorstep.cli.worker:worker",
                "Background jobs (outbox, ETA refresh, timers) in their own process(es).",
            ),
            "analytics": (
                "doorstep.cli.analytics:analytics",
                "A merchant's KPIs as JSON or a self-contained HTML report.",
            ),
            "demo": (
                "doorstep.cli.demo:demo",
                "A live simulated day in a real city, links printed; runs until Ctrl-C.",
            ),
            "simulate": (
                "doorstep.cli.simulate:simulate",
                "A whole simulated delivery day, headless, and its KPI report.",
            ),
        }
    ),
)
merchant_app = typer.Typer(help="Manage merchants (tenants).", no_args_is_help=True)
app.add_typer(merchant_app, name="merchant")
app.add_typer(bench_app, name="bench")

console = Console()
err_console = Console(stderr=True)


def _runtime() -> Runtime:
    from doorstep.observability import configure_logging
    from doorstep.runtime import Runtime
    from doorstep.settings import Settings

    settings = Settings()
    configure_logging(settings.log_level, settings.log_json)
    return Runtime.from_settings(settings)


def _migrated_runtime() -> Runtime:
    from doorstep.db.migrate import upgrade

    runtime = _runtime()
    upgrade(runtime.engine)
    return runtime


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Interface to listen on [default: 127.0.0.1]"),
    port: int | None = typer.Option(None, help="Port to listen on [default: 8000]"),
    workers: int = typer.Option(1, min=1, help="Server processes"),
    no_worker: bool = typer.Option(False, "--no-worker", help="Run no background work here"),
) -> None:
    """Serve the API and pages (migrations are applied first)."""

    import uvicorn

    runtime = _migrated_runtime()
    settings = runtime.settings
    host = host or settings.host
    port = port or settings.port
    # The app (built by doorstep.web.asgi, in this process or in each worker) reads its settings
    # from the environment: tracking links follow the address actually served.
    os.environ["DOORSTEP_HOST"] = host
    os.environ["DOORSTEP_PORT"] = str(port)
    console.print(f"Doorstep on [bold]http://{host}:{port}[/]  (API docs: /docs)")
    console.print(f"Database: {runtime.engine.url.render_as_string(hide_password=True)}")
    runtime.close()
    if no_worker:
        # The server processes read their settings from the environment: run no jobs there.
        os.environ["DOORSTEP_RUN_WORKER"] = "false"
    else:
        console.print("Background worker: in-process (use --no-worker with `doorstep worker`)")
    uvicorn.run(
        "doorstep.web.asgi:app",
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level.lower(),
        access_log=False,
    )


@app.command()
def migrate() -> None:
    """Apply database migrations."""
    from doorstep.db.migrate import current_revision, upgrade

    runtime = _runtime()
    before = current_revision(runtime.engine)
    upgrade(runtime.engine)
    after = current_revision(runtime.engine)
    if before == after:
        console.print(f"Database at migration {after} (up to date)")
    else:
        console.print(f"Database migrated from {before or 'empty'} to {after}")
    runtime.close()


@merchant_app.command("create")
def merchant_create(
    name: str = typer.Argument(..., help="The merchant's name"),
    timezone: str = typer.Option("UTC", help="IANA timezone, e.g. Europe/Monaco"),
    locale: str = typer.Option("en", help="Default language for recipients"),
    country: str | None = typer.Option(None, help="ISO 3166-1 alpha-2 country code"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON"),
) -> None:
    """Create a merchant and print its API key (shown once; only a hash is stored)."""
    from doorstep.db.engine import transaction
    from doorstep.domain.accounts.service import create_merchant, issue_api_key
    from doorstep.domain.errors import DomainError

    runtime = _migrated_runtime()
    try:
        with transaction(runtime.sessions) as session:
            merchant = create_merchant(
                session,
                runtime.clock,
                name=name,
                timezone=timezone,
                locale=locale,
                country=country,
            )
            issued = issue_api_key(session, runtime.clock, merchant, "default")
    except DomainError as exc:
        details = "; ".join(f"{e.field}: {e.message}" for e in exc.errors) or exc.detail
        err_console.print(f"[red]error:[/] {details}")
        raise typer.Exit(2) from exc
    finally:
        runtime.close()
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "id": merchant.id,
                    "name": merchant.name,
                    "timezone": merchant.timezone,
                    "api_key": issued.plaintext,
                }
            )
        )
    else:
        console.print(f"Merchant [bold]{escape(merchant.name)}[/] created: {merchant.id}")
        console.print(f"API key (shown once, keep it safe): [bold]{issued.plaintext}[/]")


@merchant_app.command("list")
def merchant_list(
    as_json: bool = typer.Option(False, "--json", help="Print JSON"),
) -> None:
    """List merchants, oldest first, with their active API keys' public prefixes."""
    from doorstep.db.engine import transaction
    from doorstep.domain.accounts.service import list_merchants

    runtime = _migrated_runtime()
    try:
        with transaction(runtime.read_sessions) as session:
            rows = list_merchants(session)
    finally:
        runtime.close()
    if as_json:
        typer.echo(json.dumps({"data": [row.as_dict() for row in rows]}))
        return
    if not rows:
        console.print("No merchants yet: doorstep merchant create NAME")
        return
    table = Table("name", "timezone", "locale", "created", "API keys")
    table.add_column("id", no_wrap=True)
    for row in rows:
        table.add_row(
            escape(row.name),
            row.timezone,
            row.locale,
            row.created_at.strftime("%Y-%m-%d %H:%M UTC"),
            ", ".join(row.key_prefixes) or "-",
            row.id,
        )
    # Piped output (files, scripts) would otherwise wrap at 80 columns.
    (console if sys.stdout.isatty() else Console(width=200)).print(table)


def main() -> None:
    app()
