"""The ``doorstep`` command: thin commands over the same domain services the API uses."""

from __future__ import annotations

import json
import os

import typer
from rich.console import Console

from doorstep.cli.bench import bench_app
from doorstep.cli.users import user_app
from doorstep.cli.worker import worker
from doorstep.db.engine import transaction
from doorstep.db.migrate import current_revision, upgrade
from doorstep.domain.accounts.service import create_merchant, issue_api_key
from doorstep.domain.errors import DomainError
from doorstep.observability import configure_logging
from doorstep.runtime import Runtime
from doorstep.settings import Settings

app = typer.Typer(
    name="doorstep",
    help="Doorstep: self-hosted last-mile delivery built around the recipient.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
merchant_app = typer.Typer(help="Manage merchants (tenants).", no_args_is_help=True)
app.add_typer(merchant_app, name="merchant")
app.add_typer(bench_app, name="bench")
app.add_typer(user_app, name="user")
app.command()(worker)

console = Console()
err_console = Console(stderr=True)


def _runtime() -> Runtime:
    settings = Settings()
    configure_logging(settings.log_level, settings.log_json)
    return Runtime.from_settings(settings)


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Interface to listen on [default: 127.0.0.1]"),
    port: int | None = typer.Option(None, help="Port to listen on [default: 8000]"),
    workers: int = typer.Option(1, min=1, help="Server processes"),
    no_worker: bool = typer.Option(False, "--no-worker", help="Run no background work here"),
) -> None:
    """Serve the API and pages (migrations are applied first)."""
    import uvicorn

    runtime = _runtime()
    upgrade(runtime.engine)
    settings = runtime.settings
    host = host or settings.host
    port = port or settings.port
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
    runtime = _runtime()
    upgrade(runtime.engine)
    console.print(f"Database at migration {current_revision(runtime.engine)}")
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
    runtime = _runtime()
    upgrade(runtime.engine)
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
        console.print(f"Merchant [bold]{merchant.name}[/] created: {merchant.id}")
        console.print(f"API key (shown once, keep it safe): [bold]{issued.plaintext}[/]")


def main() -> None:
    app()
