"""``doorstep analytics``: a merchant's KPIs from its event log, as JSON or as the
self-contained HTML report (the same figures as ``GET /v1/analytics/kpis``; ADR 0018)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

_err = Console(stderr=True)


def analytics(
    merchant: str = typer.Option(..., "--merchant", help="The merchant's id"),
    start: datetime | None = typer.Option(
        None, "--from", formats=["%Y-%m-%d"], help="First day (local), YYYY-MM-DD"
    ),
    end: datetime | None = typer.Option(
        None, "--to", formats=["%Y-%m-%d"], help="Last day (local), YYYY-MM-DD"
    ),
    report: Path | None = typer.Option(None, "--report", help="Write the HTML report here"),
    as_json: bool = typer.Option(False, "--json", help="Print the KPIs as JSON"),
) -> None:
    """Print a merchant's KPIs (JSON) and/or write them as a self-contained HTML report."""
    from doorstep.db.engine import transaction
    from doorstep.db.migrate import upgrade
    from doorstep.domain.accounts.models import Merchant
    from doorstep.domain.analytics import kpi_report, render_report
    from doorstep.domain.errors import DomainError
    from doorstep.observability import configure_logging
    from doorstep.runtime import Runtime
    from doorstep.settings import Settings

    settings = Settings()
    configure_logging(settings.log_level, settings.log_json)
    runtime = Runtime.from_settings(settings)
    upgrade(runtime.engine)
    try:
        with transaction(runtime.sessions) as session:
            owner = session.get(Merchant, merchant)
            name = owner.name if owner is not None else merchant
            kpis = kpi_report(
                session,
                merchant,
                None if start is None else start.date(),
                None if end is None else end.date(),
                runtime.clock.now(),
            )
    except DomainError as exc:
        details = "; ".join(f"{e.field}: {e.message}" for e in exc.errors) or exc.detail
        _err.print(f"[red]error:[/] {escape(details)}", highlight=False)
        raise typer.Exit(2) from exc
    if report is not None:
        report.write_text(render_report(kpis, title=f"{name}: delivery report"), encoding="utf-8")
        _err.print(f"Report written to {escape(str(report))}", highlight=False)
    if as_json or report is None:
        print(kpis.model_dump_json(by_alias=True, indent=2))
