"""``doorstep bench import``: how long ``POST /v1/orders/import`` takes for a large CSV file.

Generates N realistic rows (Monaco addresses, French mobile numbers, windows tomorrow), starts a
real ``doorstep serve`` on 127.0.0.1 over a scratch database (SQLite by default, a throw-away
PostgreSQL database with ``--database-url``/``--postgres``), posts the file once and prints the
seconds and rows/s. It also times parsing and validation alone, in this process, so the share
of the database is visible.
"""

from __future__ import annotations

import csv
import io
import json
import random
import time
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import phonenumbers
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from doorstep.bench.local_server import (
    DEFAULT_POSTGRES_URL,
    ServerProcess,
    scratch_database,
    scratch_workdir,
)
from doorstep.clock import SystemClock
from doorstep.db.engine import make_engine, make_sessionmaker, transaction
from doorstep.domain.accounts.service import create_merchant, issue_api_key
from doorstep.domain.orders.csv_import import COLUMNS, parse_orders_csv

_console = Console()
_err = Console(stderr=True)
MONACO = ZoneInfo("Europe/Monaco")
_STREETS = (
    "Avenue de la Costa",
    "Boulevard des Moulins",
    "Rue Grimaldi",
    "Avenue Princesse Grace",
    "Boulevard d'Italie",
    "Rue Comte Félix Gastaldi",
)
_NOTES = ("", "", "Door code 1234", "Leave with the concierge", 'Ring twice, "B" entrance')


def _phone(rng: random.Random) -> str:
    while True:
        digits = "".join(str(rng.randint(0, 9)) for _ in range(8))
        number = phonenumbers.parse(f"+336{digits}")
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def generate_orders_csv(rows: int, *, day: date, seed: int = 42, delimiter: str = ",") -> bytes:
    """``rows`` valid orders for ``day`` as a CSV file in the import's format (deterministic)."""
    rng = random.Random(seed)
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for n in range(rows):
        start = datetime.combine(day, datetime.min.time(), MONACO) + timedelta(
            hours=rng.randint(8, 18)
        )
        count = rng.randint(1, 3)
        values = {
            "reference": f"BENCH-{seed}-{n:06d}",
            "recipient_name": f"Customer {n}",
            "recipient_phone": _phone(rng),
            "recipient_email": f"customer{n}@example.com",
            "recipient_locale": rng.choice(("fr", "en", "it", "de")),
            "address_line1": f"{rng.randint(1, 60)} {rng.choice(_STREETS)}",
            "city": "Monaco",
            "postal_code": "98000",
            "country": "MC",
            "lat": f"{rng.uniform(43.724, 43.751):.6f}",
            "lon": f"{rng.uniform(7.409, 7.439):.6f}",
            "window_start": start.isoformat(),
            "window_end": (start + timedelta(hours=2)).isoformat(),
            "service_level": "scheduled",
            "parcel_count": str(count),
            "weight_kg": f"{rng.uniform(0.2, 12.0) * count:.2f}",
            "instructions": rng.choice(_NOTES),
            "service_time_s": rng.choice(("", "120", "300")),
        }
        writer.writerow([values[c] for c in COLUMNS])
    return buffer.getvalue().encode()


@dataclass(frozen=True)
class ImportRun:
    database: str
    rows: int
    megabytes: float
    request_s: float
    rows_per_s: float
    parse_s: float
    status: int


def _merchant_key(database_url: str) -> str:
    engine = make_engine(database_url)
    try:
        clock = SystemClock()
        with transaction(make_sessionmaker(engine)) as session:
            merchant = create_merchant(
                session, clock, name="Import bench", timezone="Europe/Monaco"
            )
            return issue_api_key(session, clock, merchant, "bench").plaintext
    finally:
        engine.dispose()


def run_import_bench(database_url: str | None, content: bytes, rows: int) -> ImportRun:
    """Serve a scratch database, post ``content`` once, and time it."""
    started = time.perf_counter()
    parsed = parse_orders_csv(content, max_rows=max(rows, 1))
    parse_s = time.perf_counter() - started
    if parsed.errors:
        raise ValueError(f"the generated file is invalid: {parsed.errors[:3]}")
    with scratch_workdir() as workdir, scratch_database(database_url, Path(workdir)) as url:
        with ServerProcess(url, Path(workdir)) as server:
            key = _merchant_key(url)
            with httpx.Client(base_url=server.base_url, trust_env=False, timeout=600) as client:
                started = time.perf_counter()
                resp = client.post(
                    "/v1/orders/import",
                    content=content,
                    headers={"Authorization": f"Bearer {key}", "Content-Type": "text/csv"},
                )
                request_s = time.perf_counter() - started
        if resp.status_code != 201:
            raise RuntimeError(f"import answered {resp.status_code}: {resp.text[:500]}")
    backend = "postgresql" if url.startswith("postgresql") else "sqlite"
    return ImportRun(
        database=backend,
        rows=rows,
        megabytes=round(len(content) / 1e6, 2),
        request_s=round(request_s, 3),
        rows_per_s=round(rows / request_s, 1),
        parse_s=round(parse_s, 3),
        status=resp.status_code,
    )


def import_(
    rows: int = typer.Option(10_000, min=1, max=50_000, help="Rows in the generated file"),
    database_url: str | None = typer.Option(
        None,
        help="PostgreSQL server URL to create a scratch database on, or a new SQLite file "
        "(default: a temporary SQLite file)",
    ),
    postgres: bool = typer.Option(False, help="also run on PostgreSQL at the default local URL"),
    seed: int = typer.Option(42, help="Seed of the generated rows"),
    semicolon: bool = typer.Option(False, help="Write the file with ';' as delimiter"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table"),
) -> None:
    """Time POST /v1/orders/import of a generated CSV file against a real local server."""
    tomorrow = (SystemClock().now().astimezone(MONACO) + timedelta(days=1)).date()
    content = generate_orders_csv(
        rows, day=tomorrow, seed=seed, delimiter=";" if semicolon else ","
    )
    targets: list[str | None] = [database_url]
    if postgres and database_url != DEFAULT_POSTGRES_URL:
        targets.append(DEFAULT_POSTGRES_URL)
    runs: list[ImportRun] = []
    for target in targets:
        if not as_json:
            _err.print(f"[dim]importing {rows} rows into {target or 'a temporary SQLite file'}[/]")
        try:
            runs.append(run_import_bench(target, content, rows))
        except (RuntimeError, ValueError, OSError, httpx.HTTPError) as exc:
            _err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
            raise typer.Exit(1) from exc
    if as_json:
        stamp = SystemClock().now().isoformat()
        typer.echo(json.dumps({"at": stamp, "runs": [asdict(r) for r in runs]}))
        return
    table = Table(
        title=f"POST /v1/orders/import, {rows} rows ({runs[0].megabytes} MB)",
        title_justify="left",
        caption="request: one HTTP request to a local `doorstep serve`; parse: CSV reading "
        "and validation alone, in this process",
        caption_justify="left",
    )
    for column in ("database", "request s", "rows/s", "parse s"):
        table.add_column(column, justify="right" if column != "database" else "left")
    for run in runs:
        table.add_row(
            run.database, f"{run.request_s:.2f}", f"{run.rows_per_s:,.0f}", f"{run.parse_s:.2f}"
        )
    _console.print(table)
