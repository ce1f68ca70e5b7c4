"""The console's CSV import, under ``/console/orders/import`` and ``/console/orders/imports``:
upload a file, see a preview of its rows and every error (a dry run through
:func:`~doorstep.domain.orders.imports.check_import`: nothing is written), import it when it
is clean (the same :func:`~doorstep.domain.orders.service.import_orders` the API calls, all
rows or none), and undo an import as a whole from its page
(:func:`~doorstep.domain.orders.imports.undo_import`).

Between the preview and the import the file travels back with the form (a hidden field), so
the server keeps nothing between the two steps and what is imported is what was previewed
(line breaks, which browsers rewrite as CRLF, are made LF at both steps).
"""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from doorstep.domain.accounts.users import Action
from doorstep.domain.errors import DomainError, NotFound
from doorstep.domain.orders import imports, service
from doorstep.domain.orders.csv_import import COLUMNS, ImportRejected
from doorstep.domain.orders.status import Status
from doorstep.settings import Settings
from doorstep.web.deps import ClockDep, SettingsDep
from doorstep.web.pages import orders_view as view
from doorstep.web.pages.auth import ConsoleUser
from doorstep.web.pages.calls import console_page
from doorstep.web.pages.console import render_console
from doorstep.web.pages.orders import (
    PAGE_PATH,
    actor_of,
    check_csrf,
    not_found,
    pop_flash,
    redirect,
    refusal,
)

__all__ = ["router"]

router = APIRouter(prefix=PAGE_PATH, include_in_schema=False)

PREVIEW_ROWS = 200  # valid rows shown in a preview (all errors are shown, up to the domain's cap)
MAX_FILE_BYTES = 5_000_000
NOT_UTF8 = "The file is not UTF-8 text; save it as 'CSV UTF-8' from your spreadsheet."


async def _upload(request: Request) -> dict[str, str]:
    """The posted fields, and the uploaded file's text under ``content`` (``not_utf8`` set
    instead when the file is not UTF-8 text)."""
    form = await request.form(max_files=1, max_fields=10)
    fields: dict[str, str] = {}
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            data = await value.read(MAX_FILE_BYTES + 1)
            try:
                fields["content"] = data.decode("utf-8-sig")
            except UnicodeDecodeError:
                fields["content"], fields["not_utf8"] = "", "1"
            fields["filename"] = value.filename or ""
            fields["too_large"] = "1" if len(data) > MAX_FILE_BYTES else ""
        elif isinstance(value, str):
            fields[key] = value
    fields["content"] = _lines(fields.get("content", ""))
    return fields


def _lines(text: str) -> str:
    """``text`` with every line break a plain LF. Browsers send a form's line breaks as CRLF,
    so the previewed file and the one posted back are made alike before either is read."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


Upload = Annotated[dict[str, str], Depends(_upload)]


def _form_page(
    request: Request, me: ConsoleUser, error: str = "", status_code: int = 200
) -> Response:
    context = {"flash": pop_flash(request), "error": error, "columns": COLUMNS}
    return render_console(
        request, me, "console/orders_import.html", context, status_code=status_code
    )


@router.get("/import", name="console_orders_import")
@console_page(Action.ORDERS_WRITE)
def import_form(request: Request, me: ConsoleUser) -> Response:
    """The upload form, with the columns a file may have."""
    return _form_page(request, me)


def _check(
    session: Session, clock: ClockDep, me: ConsoleUser, settings: Settings, content: str
) -> imports.CheckedImport:
    return imports.check_import(
        session,
        clock,
        me.merchant.id,
        content.encode(),
        max_rows=settings.max_import_rows,
        timezone=me.merchant.timezone,
    )


@router.post("/import/preview", name="console_orders_import_preview")
@console_page(Action.ORDERS_WRITE)
def preview(
    request: Request,
    me: ConsoleUser,
    session: Session,
    clock: ClockDep,
    settings: SettingsDep,
    form: Upload,
) -> Response:
    """Check the uploaded file without writing: its valid rows and every error, by row."""
    check_csrf(request, form)
    content = form.get("content", "")
    if form.get("too_large"):
        return _form_page(request, me, "The file is larger than 5 MB; split it.", 413)
    if form.get("not_utf8"):
        return _form_page(request, me, NOT_UTF8, 422)
    if not content.strip():
        return _form_page(request, me, "Choose a CSV file to import.", 422)
    try:
        checked = _check(session, clock, me, settings, content)
    except ImportRejected as exc:
        return _form_page(request, me, refusal(exc), 422)
    context = {
        "checked": checked,
        "rows": checked.orders[:PREVIEW_ROWS],
        "hidden_rows": max(0, len(checked.orders) - PREVIEW_ROWS),
        "content": content,
        "filename": form.get("filename", ""),
        "tz": ZoneInfo(me.merchant.timezone),
        "view": view,
    }
    return render_console(request, me, "console/orders_import_preview.html", context)


@router.post("/import", name="console_orders_import_commit")
@console_page(Action.ORDERS_WRITE)
def commit(
    request: Request,
    me: ConsoleUser,
    session: Session,
    clock: ClockDep,
    settings: SettingsDep,
    form: Upload,
) -> Response:
    """Import the previewed file (all rows or none) and show the import's page."""
    check_csrf(request, form)
    try:
        with session.begin_nested():
            done = service.import_orders(
                session,
                clock,
                me.merchant.id,
                form.get("content", "").encode(),
                actor=actor_of(me),
                secret_key=settings.effective_secret_key,
                max_rows=settings.max_import_rows,
                timezone=me.merchant.timezone,
            )
    except ImportRejected as exc:
        return _form_page(request, me, f"Nothing was imported. {refusal(exc)}", 422)
    except DomainError as exc:
        return _form_page(request, me, f"Nothing was imported. {refusal(exc)}", exc.status_code)
    count = len(done.orders)
    message = ("success", f"Imported {count} order{'' if count == 1 else 's'}.")
    return redirect(request, session, message, f"{PAGE_PATH}/imports/{done.import_id}")


@router.get("/imports/{import_id}", name="console_orders_import_page")
@console_page(Action.ORDERS_READ)
def import_page(request: Request, import_id: str, me: ConsoleUser, session: Session) -> Response:
    """An import's orders with their statuses, and the button that undoes it."""
    try:
        orders = imports.import_orders_of(session, me.merchant.id, import_id, lock=False)
    except NotFound:
        return not_found(request, me, "import")
    undoable = [o for o in orders if Status(o.status) in imports.UNDOABLE]
    context = {
        "flash": pop_flash(request),
        "import_id": import_id,
        "orders": orders,
        "undoable": len(undoable),
        "tz": ZoneInfo(me.merchant.timezone),
        "view": view,
        "can_write": me.can(Action.ORDERS_WRITE),
    }
    return render_console(request, me, "console/orders_import_done.html", context)


@router.post("/imports/{import_id}/undo", name="console_orders_import_undo")
@console_page(Action.ORDERS_WRITE)
def undo(
    request: Request,
    import_id: str,
    me: ConsoleUser,
    session: Session,
    clock: ClockDep,
    form: Upload,
) -> Response:
    """Undo the import: cancel its orders that have not left; say what stayed and why."""
    check_csrf(request, form)
    try:
        with session.begin_nested():
            done = imports.undo_import(
                session, clock, me.merchant.id, import_id, actor=actor_of(me)
            )
    except NotFound:
        return not_found(request, me, "import")
    cancelled = len(done.cancelled)
    text = f"Undid the import: cancelled {cancelled} order{'' if cancelled == 1 else 's'}."
    if done.kept:
        text += f" {len(done.kept)} had already left and keep their status."
    return redirect(request, session, ("success", text), f"{PAGE_PATH}/imports/{import_id}")
