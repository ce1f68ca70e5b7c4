"""The console's orders screen, under ``/console/orders``: find orders (search by reference,
recipient's name or street; filter by the window's day, status and service zone; sort; page
with a keyset cursor), and an order's page with its details, its timeline in plain words and,
for roles that may change orders, forms to edit it, move its window and cancel it.

Handlers parse the query or the form, call one domain query or verb (the same
:mod:`doorstep.domain.orders.service` verbs the JSON API calls, so the transition table, the
event log and the rules are the same) and draw the page, or redirect with a flash message
(Post/Redirect/Get). Every form carries the session's CSRF token. Another merchant's order is
a 404 page. CSV imports are :mod:`~doorstep.web.pages.orders_import`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from doorstep.clock import Clock
from doorstep.domain.accounts.users import Action
from doorstep.domain.errors import Actor, DomainError, FieldError, NotFound
from doorstep.domain.orders import queries, service
from doorstep.domain.orders.queries import InvalidCursor
from doorstep.domain.orders.schemas import OrderPatch, field_errors
from doorstep.domain.orders.search import SORT_LABELS, OrderSearch, Sort, search_orders
from doorstep.domain.orders.status import TRANSITIONS, Status
from doorstep.domain.slots.zones import list_zones
from doorstep.domain.tracking.links import tracking_token_for
from doorstep.web.csrf import FIELD_NAME, csrf_ok
from doorstep.web.deps import ClockDep
from doorstep.web.pages import orders_view as view
from doorstep.web.pages.auth import ConsoleForbidden, ConsoleUser
from doorstep.web.pages.calls import console_page
from doorstep.web.pages.console import render_console
from doorstep.web.pages.dispatch_view import today_for
from doorstep.web.pages.fleet_forms import FormState, Problem, humanise

__all__ = ["PAGE_PATH", "router"]

router = APIRouter(prefix="/console/orders", include_in_schema=False)

PAGE_PATH = "/console/orders"
FLASH_KEY = "orders_flash"
FORM_EXPIRED = "the form expired; reload the page and try again"
PAGE_SIZE = 50
MAX_VALUE = 2000


# The edit form's inputs → the API's field paths (for errors) and patch shape.
EDIT_INPUTS: dict[str, str] = {
    "recipient_name": "recipient.name",
    "recipient_phone": "recipient.phone",
    "recipient_email": "recipient.email",
    "address_line1": "address.line1",
    "address_line2": "address.line2",
    "city": "address.city",
    "postal_code": "address.postal_code",
    "instructions": "instructions",
}
WINDOW_INPUTS = ("window_date", "window_from", "window_to")


async def _posted_form(request: Request) -> dict[str, str]:
    form = await request.form(max_files=0, max_fields=50)
    return {k: v[:MAX_VALUE] for k, v in form.multi_items() if isinstance(v, str)}


PostedForm = Annotated[dict[str, str], Depends(_posted_form)]


def check_csrf(request: Request, form: Mapping[str, str]) -> None:
    if not csrf_ok(request, form.get(FIELD_NAME)):
        raise ConsoleForbidden(FORM_EXPIRED)


def actor_of(me: ConsoleUser) -> Actor:
    return Actor("user", me.user.id)


def flash(request: Request, kind: str, text: str) -> None:
    request.session[FLASH_KEY] = {"kind": kind, "text": text}


def pop_flash(request: Request) -> dict[str, str] | None:
    found = request.session.pop(FLASH_KEY, None)
    return found if isinstance(found, dict) else None


def redirect(
    request: Request, session: Session, message: tuple[str, str], target: str
) -> RedirectResponse:
    """Commit first (the next page must see the change), keep the flash, redirect (303)."""
    session.commit()
    flash(request, *message)
    return RedirectResponse(target, status_code=303)


def not_found(request: Request, me: ConsoleUser, what: str = "order") -> Response:
    return render_console(
        request,
        me,
        "error.html",
        {"title": "Not found", "message": f"There is no such {what} in {me.merchant.name}."},
        status_code=404,
    )


def refusal(exc: DomainError) -> str:
    fields = "; ".join(humanise(e.message) for e in exc.errors)
    return humanise(exc.detail) + (f": {fields}" if fields else "") + "."


# --- The list -------------------------------------------------------------------------------


def _parse_day(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def _parse_status(text: str) -> tuple[Status, ...]:
    try:
        return (Status(text),) if text else ()
    except ValueError:
        return ()


def _parse_sort(text: str) -> Sort:
    try:
        return Sort(text)
    except ValueError:
        return Sort.NEWEST


def list_url(params: Mapping[str, str]) -> str:
    kept = {k: v for k, v in params.items() if v}
    return f"{PAGE_PATH}?{urlencode(kept)}" if kept else PAGE_PATH


@router.get("", name="console_orders")
@console_page(Action.ORDERS_READ)
def orders_list(
    request: Request,
    me: ConsoleUser,
    session: Session,
    clock: ClockDep,
    q: Annotated[str, Query(max_length=200)] = "",
    day: Annotated[str, Query(alias="date", max_length=32)] = "",
    status: Annotated[str, Query(max_length=32)] = "",
    zone: Annotated[str, Query(max_length=32)] = "",
    sort: Annotated[str, Query(max_length=32)] = "",
    after: Annotated[str | None, Query(max_length=400)] = None,
) -> Response:
    """The merchant's orders, searched, filtered and sorted, a page at a time."""
    tz = me.merchant.timezone
    zones, _ = list_zones(session, me.merchant.id, limit=200)
    zone_ids = {z.id for z in zones}
    search = OrderSearch(
        text=q,
        day=_parse_day(day),
        statuses=_parse_status(status),
        zone_id=zone if zone in zone_ids else None,
        sort=_parse_sort(sort),
    )
    notice = ""
    try:
        page = search_orders(session, me.merchant.id, tz, search, limit=PAGE_SIZE, cursor=after)
    except InvalidCursor:
        notice = "That page link is out of date; here is the first page."
        page = search_orders(session, me.merchant.id, tz, search, limit=PAGE_SIZE)
        after = None
    params = {
        "q": search.text,
        "date": search.day.isoformat() if search.day else "",
        "status": search.statuses[0].value if search.statuses else "",
        "zone": search.zone_id or "",
        "sort": search.sort.value if search.sort is not Sort.NEWEST else "",
    }
    filtered = any(v for k, v in params.items() if k != "sort")
    context: dict[str, Any] = {
        "flash": pop_flash(request),
        "notice": notice,
        "orders": page.orders,
        "total": page.total,
        "params": params,
        "filtered": filtered,
        "first_url": list_url(params) if after else "",
        "next_url": list_url({**params, "after": page.next_cursor}) if page.next_cursor else "",
        "clear_url": PAGE_PATH,
        "statuses": view.STATUS_LABELS,
        "sorts": SORT_LABELS,
        "zones": zones,
        "today": today_for(clock, tz),
        "tz": ZoneInfo(tz),
        "view": view,
        "can_write": me.can(Action.ORDERS_WRITE),
    }
    return render_console(request, me, "console/orders.html", context)


# --- An order's page ------------------------------------------------------------------------


def _edit_values(order: Any) -> dict[str, str]:
    return {
        "recipient_name": order.recipient_name,
        "recipient_phone": order.recipient_phone or "",
        "recipient_email": order.recipient_email or "",
        "address_line1": order.address_line1,
        "address_line2": order.address_line2 or "",
        "city": order.city,
        "postal_code": order.postal_code or "",
        "instructions": order.instructions or "",
    }


def _window_values(order: Any, tz: ZoneInfo, today: date) -> dict[str, str]:
    if order.window_start is None or order.window_end is None:
        return {"window_date": today.isoformat(), "window_from": "09:00", "window_to": "11:00"}
    start, end = order.window_start.astimezone(tz), order.window_end.astimezone(tz)
    return {
        "window_date": start.date().isoformat(),
        "window_from": f"{start:%H:%M}",
        "window_to": f"{end:%H:%M}",
    }


def _order_page(
    request: Request,
    me: ConsoleUser,
    session: Session,
    clock: Clock,
    order_id: str,
    *,
    edit: FormState | None = None,
    window: FormState | None = None,
    status_code: int = 200,
) -> Response:
    try:
        history = queries.order_history(session, me.merchant.id, order_id)
    except NotFound:
        return not_found(request, me)
    order = history.order
    secret = request.app.state.runtime.settings.effective_secret_key
    tz = ZoneInfo(me.merchant.timezone)
    timeline = [view.describe(e, tz, history.user_names) for e in reversed(history.events)]
    today = today_for(clock, me.merchant.timezone)
    context = {
        "order": order,
        "tz": tz,
        "view": view,
        "timeline": timeline,
        "flash": pop_flash(request),
        "edit": edit or FormState(_edit_values(order)),
        "window": window or FormState(_window_values(order, tz, today)),
        "cancel_form": FormState({}),
        "tracking_path": f"/t/{tracking_token_for(secret, order)}",
        "can_write": me.can(Action.ORDERS_WRITE),
        "editable": view.editable(order),
        "cancellable": Status.CANCELLED in TRANSITIONS[Status(order.status)],
    }
    return render_console(request, me, "console/order.html", context, status_code=status_code)


@router.get("/{order_id}", name="console_order")
@console_page(Action.ORDERS_READ)
def order_page(
    request: Request, order_id: str, me: ConsoleUser, session: Session, clock: ClockDep
) -> Response:
    """An order: its details, its timeline and (for writers) what can be changed."""
    return _order_page(request, me, session, clock, order_id)


def _place_errors(state: FormState, errors: list[FieldError], inputs: Mapping[str, str]) -> None:
    by_path = {path: name for name, path in inputs.items()}
    for error in errors:
        path = error.field.split("[")[0]
        name = by_path.get(path)
        if name is None:
            state.problems.append(view_problem(f"{error.field}: {error.message}"))
        else:
            state.add(name, error.message)


def view_problem(text: str) -> Problem:
    return Problem(humanise(text))


@router.post("/{order_id}/edit", name="console_order_edit")
@console_page(Action.ORDERS_WRITE)
def edit_order(
    request: Request,
    order_id: str,
    me: ConsoleUser,
    session: Session,
    clock: ClockDep,
    form: PostedForm,
) -> Response:
    """Save the recipient's details, the address and the instructions."""
    check_csrf(request, form)
    values = {name: form.get(name, "").strip() for name in EDIT_INPUTS}
    state = FormState(values)
    patch_data: dict[str, Any] = {}
    for name, path in EDIT_INPUTS.items():
        head, _, tail = path.partition(".")
        value: str | None = values[name] or None
        if tail:
            patch_data.setdefault(head, {})[tail] = value
        else:
            patch_data[head] = value
    try:
        patch = OrderPatch.model_validate(patch_data)
        with session.begin_nested():
            order = service.update_order(
                session, clock, me.merchant.id, order_id, patch, actor=actor_of(me)
            )
    except ValidationError as exc:
        _place_errors(state, field_errors(exc), EDIT_INPUTS)
        status = 422
    except NotFound:
        return not_found(request, me)
    except DomainError as exc:
        if exc.errors:
            _place_errors(state, exc.errors, EDIT_INPUTS)
        else:
            state.problems.append(view_problem(refusal(exc)))
        status = exc.status_code
    else:
        done = ("success", f"Saved order {order.reference}.")
        return redirect(request, session, done, f"{PAGE_PATH}/{order_id}")
    return _order_page(request, me, session, clock, order_id, edit=state, status_code=status)


def _window_patch(form: Mapping[str, str], tz: ZoneInfo, state: FormState) -> OrderPatch | None:
    day = _parse_day(form.get("window_date", ""))
    if day is None:
        state.add("window_date", "enter a date")
    times: dict[str, time] = {}
    for name in ("window_from", "window_to"):
        try:
            times[name] = time.fromisoformat(form.get(name, ""))
        except ValueError:
            state.add(name, "enter a time such as 09:30")
    if state.invalid or day is None:
        return None
    start = datetime.combine(day, times["window_from"], tz)
    end = datetime.combine(day, times["window_to"], tz)
    if end <= start:
        state.add("window_to", "the window must end after it starts")
        return None
    return OrderPatch.model_validate({"window": {"start": start, "end": end}})


@router.post("/{order_id}/window", name="console_order_window")
@console_page(Action.ORDERS_WRITE)
def move_window(
    request: Request,
    order_id: str,
    me: ConsoleUser,
    session: Session,
    clock: ClockDep,
    form: PostedForm,
) -> Response:
    """Move the delivery window (a day and two times, in the merchant's timezone)."""
    check_csrf(request, form)
    tz = ZoneInfo(me.merchant.timezone)
    state = FormState({name: form.get(name, "").strip() for name in WINDOW_INPUTS})
    status = 422
    patch = _window_patch(form, tz, state)
    if patch is not None:
        try:
            with session.begin_nested():
                order = service.update_order(
                    session, clock, me.merchant.id, order_id, patch, actor=actor_of(me)
                )
        except NotFound:
            return not_found(request, me)
        except DomainError as exc:
            for error in exc.errors or [FieldError("window", refusal(exc))]:
                target = "window_date" if error.field in ("window", "window.start") else "window_to"
                state.add(target, error.message)
            status = exc.status_code
        else:
            when = view.window_text(order.window_start, order.window_end, tz)
            done = ("success", f"Moved the window of {order.reference} to {when}.")
            return redirect(request, session, done, f"{PAGE_PATH}/{order_id}#timeline")
    return _order_page(request, me, session, clock, order_id, window=state, status_code=status)


@router.post("/{order_id}/cancel", name="console_order_cancel")
@console_page(Action.ORDERS_WRITE)
def cancel(
    request: Request,
    order_id: str,
    me: ConsoleUser,
    session: Session,
    clock: ClockDep,
    form: PostedForm,
) -> Response:
    """Cancel the order (with an optional note for the timeline)."""
    check_csrf(request, form)
    note = form.get("note", "").strip()[:500] or None
    target = f"{PAGE_PATH}/{order_id}"
    try:
        with session.begin_nested():
            order = service.cancel_order(
                session, clock, me.merchant.id, order_id, actor=actor_of(me), note=note
            )
    except NotFound:
        return not_found(request, me)
    except DomainError as exc:
        return redirect(request, session, ("error", f"Not cancelled. {refusal(exc)}"), target)
    return redirect(request, session, ("success", f"Cancelled order {order.reference}."), target)
