"""The console's delivery-options pages, under ``/console/slots``: each day's windows with how
full they are, and the zones, slot calendars and pickup points, each with a "New …" form and
an edit page (``/console/slots/<kind>/<id>``) to change or delete it.

Handlers read the form, call the verbs the JSON API calls (:mod:`doorstep.domain.slots`) with
the API's input models (built in :mod:`~doorstep.web.pages.slots_forms`) and redirect with a
flash message (Post/Redirect/Get); a refusal draws the form again with the values as typed and
each message beside its field. Owners and dispatchers (:attr:`Action.PLANS_WRITE`) use them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from doorstep.clock import Clock
from doorstep.domain.accounts.users import Action
from doorstep.domain.dispatch.models import Depot
from doorstep.domain.errors import DomainError, NotFound
from doorstep.domain.slots import calendars, zones
from doorstep.domain.slots.fill import day_fill
from doorstep.domain.slots.models import PickupPoint, ServiceZone, SlotCalendar
from doorstep.web.csrf import FIELD_NAME, csrf_ok
from doorstep.web.deps import ClockDep
from doorstep.web.pages import slots_forms as forms
from doorstep.web.pages.auth import ConsoleForbidden, ConsoleUser
from doorstep.web.pages.calls import console_page
from doorstep.web.pages.console import render_console
from doorstep.web.pages.dispatch_view import Fmt, today_for
from doorstep.web.pages.fleet_forms import FormInvalid, FormState, Problem, humanise
from doorstep.web.pages.fleet_view import Choice

router = APIRouter(prefix="/console/slots", include_in_schema=False)

PAGE_PATH = "/console/slots"
FLASH_KEY = "slots_flash"
MAX_VALUE = 20_000  # a zone's GeoJSON can be long


async def _posted_form(request: Request) -> dict[str, str]:
    form = await request.form(max_files=0, max_fields=100)
    return {k: v[:MAX_VALUE] for k, v in form.multi_items() if isinstance(v, str)}


PostedForm = Annotated[dict[str, str], Depends(_posted_form)]


@dataclass(frozen=True)
class Kind:
    slug: str  # zones | calendars | pickup-points
    one: str
    title: str
    access: Callable[[Session, str, str], Any]
    create: Callable[[Session, Clock, str, Mapping[str, str]], Any]
    update: Callable[[Session, Clock, str, str, Mapping[str, str]], Any]
    delete: Callable[[Session, str, str], None] | None
    values: Callable[[Any], dict[str, str]]
    new_values: dict[str, str]


KINDS: dict[str, Kind] = {
    "zones": Kind(
        "zones",
        "zone",
        "Zones",
        access=zones.access_zone,
        create=lambda s, c, m, f: zones.create_zone(s, c, m, forms.zone_in(f)),
        update=lambda s, c, m, i, f: zones.update_zone(s, c, m, i, forms.zone_patch(f)),
        delete=zones.delete_zone,
        values=forms.zone_values,
        new_values={"active": "1", "geometry": '{"type": "Polygon", "coordinates": [[]]}'},
    ),
    "calendars": Kind(
        "calendars",
        "calendar",
        "Slot calendars",
        access=calendars.access_calendar,
        create=lambda s, c, m, f: calendars.create_calendar(s, c, m, forms.calendar_in(f)),
        update=lambda s, c, m, i, f: calendars.update_calendar(s, c, m, i, forms.calendar_patch(f)),
        delete=calendars.delete_calendar,
        values=forms.calendar_values,
        new_values={
            "active": "1",
            "windows": "mon-fri 18:00-20:00 40 4.90\nsat 09:00-12:00 25 7.90",
            "same_day_cutoff": "14:00",
            "next_day_cutoff": "22:00",
            "lead_time_minutes": "60",
            "horizon_days": "14",
            "currency": "EUR",
        },
    ),
    "pickup-points": Kind(
        "pickup-points",
        "pickup point",
        "Pickup points",
        access=zones.access_pickup_point,
        create=lambda s, c, m, f: zones.create_pickup_point(s, c, m, forms.pickup_point_in(f)),
        update=lambda s, c, m, i, f: zones.update_pickup_point(
            s, m, i, forms.pickup_point_patch(f)
        ),
        delete=None,
        values=forms.pickup_point_values,
        new_values={"active": "1", "kind": "shop"},
    ),
}


def _check_csrf(request: Request, form: Mapping[str, str]) -> None:
    if not csrf_ok(request, form.get(FIELD_NAME)):
        raise ConsoleForbidden("the form expired; reload the page and try again")


def _redirect(request: Request, session: Session, kind: str, text: str, target: str) -> Response:
    session.commit()
    request.session[FLASH_KEY] = {"kind": kind, "text": text}
    return RedirectResponse(target, status_code=303)


def _pop_flash(request: Request) -> dict[str, str] | None:
    flash = request.session.pop(FLASH_KEY, None)
    return flash if isinstance(flash, dict) else None


def _state(form: Mapping[str, str]) -> FormState:
    return FormState({k: v for k, v in form.items() if k != FIELD_NAME})


def _refused(state: FormState, exc: DomainError | FormInvalid) -> int:
    errors = exc.errors
    for error in errors:
        state.add(error.field, error.message)
    if isinstance(exc, DomainError):
        if not errors:
            state.problems.append(Problem(humanise(exc.detail) + "."))
        return exc.status_code
    return 422


@dataclass(frozen=True)
class Lists:
    depots: list[Depot]
    zones: list[ServiceZone]
    calendars: list[SlotCalendar]
    points: list[PickupPoint]


def _lists(session: Session, merchant_id: str) -> Lists:
    def rows(model: Any, order: Any) -> list[Any]:
        return list(
            session.scalars(select(model).where(model.merchant_id == merchant_id).order_by(order))
        )

    return Lists(
        rows(Depot, Depot.name),
        rows(ServiceZone, ServiceZone.name),
        rows(SlotCalendar, SlotCalendar.name),
        rows(PickupPoint, PickupPoint.name),
    )


def _common(me: ConsoleUser, lists: Lists) -> dict[str, Any]:
    return {
        "lists": lists,
        "kinds": KINDS,
        "fmt": Fmt,
        "depot_choices": [Choice(d.id, d.name) for d in lists.depots],
        "zone_choices": [Choice(z.id, z.name) for z in lists.zones],
        "kind_choices": [Choice("shop", "Shop"), Choice("locker", "Locker")],
        "depot_names": {d.id: d.name for d in lists.depots},
        "zone_names": {z.id: z.name for z in lists.zones},
        "tz": ZoneInfo(me.merchant.timezone),
        "money": lambda cents, cur: f"{cents // 100}.{cents % 100:02d} {cur}",
        "window_lines": forms.format_windows,
    }


def _overview(
    request: Request,
    me: ConsoleUser,
    session: Session,
    clock: Clock,
    *,
    day_text: str | None = None,
    forms_state: dict[str, FormState] | None = None,
    status_code: int = 200,
) -> Response:
    today = today_for(clock, me.merchant.timezone)
    try:
        day = date.fromisoformat(day_text) if day_text else today
    except ValueError:
        day = today
    tz = ZoneInfo(me.merchant.timezone)
    lists = _lists(session, me.merchant.id)
    given = forms_state or {}
    context = {
        **_common(me, lists),
        "flash": _pop_flash(request),
        "day": day,
        "today": today,
        "previous_day": day - timedelta(days=1),
        "next_day": day + timedelta(days=1),
        "fill": day_fill(session, me.merchant.id, tz, day, clock.now()),
        "forms": {
            slug: given.get(slug) or FormState(dict(kind.new_values))
            for slug, kind in KINDS.items()
        },
    }
    return render_console(request, me, "console/slots.html", context, status_code=status_code)


def _edit(
    request: Request,
    me: ConsoleUser,
    session: Session,
    kind: Kind,
    obj: Any,
    form: FormState,
    *,
    status_code: int = 200,
) -> Response:
    context = {
        **_common(me, _lists(session, me.merchant.id)),
        "flash": _pop_flash(request),
        "kind": kind,
        "obj": obj,
        "form": form,
        "action": f"{PAGE_PATH}/{kind.slug}/{obj.id}",
    }
    return render_console(request, me, "console/slots_edit.html", context, status_code=status_code)


def _not_found(request: Request, me: ConsoleUser) -> Response:
    return render_console(
        request,
        me,
        "error.html",
        {"title": "Not found", "message": f"There is no such page in {me.merchant.name}."},
        status_code=404,
    )


def _find(session: Session, me: ConsoleUser, kind: str, item_id: str) -> tuple[Kind, Any] | None:
    spec = KINDS.get(kind)
    if spec is None:
        return None
    try:
        return spec, spec.access(session, me.merchant.id, item_id)
    except NotFound:
        return None


# --- Pages ----------------------------------------------------------------------------------


@router.get("", name="console_slots")
@console_page(Action.PLANS_WRITE)
def overview(
    request: Request,
    me: ConsoleUser,
    session: Session,
    clock: ClockDep,
    day_text: Annotated[str | None, Query(alias="date", max_length=32)] = None,
) -> Response:
    """The day's windows with their fill, and the zones, calendars and pickup points."""
    return _overview(request, me, session, clock, day_text=day_text)


@router.post("/{kind}/new", name="console_slots_create")
@console_page(Action.PLANS_WRITE)
def create(
    request: Request,
    kind: str,
    me: ConsoleUser,
    session: Session,
    clock: ClockDep,
    form: PostedForm,
) -> Response:
    """Add a zone, calendar or pickup point."""
    _check_csrf(request, form)
    spec = KINDS.get(kind)
    if spec is None:
        return _not_found(request, me)
    state = _state(form)
    try:
        with session.begin_nested():
            obj = spec.create(session, clock, me.merchant.id, form)
    except (FormInvalid, DomainError) as exc:
        status = _refused(state, exc)
        return _overview(request, me, session, clock, forms_state={kind: state}, status_code=status)
    label = getattr(obj, "name", "") or spec.one
    return _redirect(request, session, "success", f"Added {label}.", f"{PAGE_PATH}#{spec.slug}")


@router.get("/{kind}/{item_id}", name="console_slots_item")
@console_page(Action.PLANS_WRITE)
def edit_page(
    request: Request, kind: str, item_id: str, me: ConsoleUser, session: Session
) -> Response:
    """A zone's, calendar's or pickup point's edit form."""
    found = _find(session, me, kind, item_id)
    if found is None:
        return _not_found(request, me)
    spec, obj = found
    return _edit(request, me, session, spec, obj, FormState(spec.values(obj)))


@router.post("/{kind}/{item_id}", name="console_slots_update")
@console_page(Action.PLANS_WRITE)
def update(
    request: Request,
    kind: str,
    item_id: str,
    me: ConsoleUser,
    session: Session,
    clock: ClockDep,
    form: PostedForm,
) -> Response:
    """Save an edit form."""
    _check_csrf(request, form)
    found = _find(session, me, kind, item_id)
    if found is None:
        return _not_found(request, me)
    spec, obj = found
    state = _state(form)
    try:
        with session.begin_nested():
            obj = spec.update(session, clock, me.merchant.id, item_id, form)
    except (FormInvalid, DomainError) as exc:
        status = _refused(state, exc)
        obj = spec.access(session, me.merchant.id, item_id)
        return _edit(request, me, session, spec, obj, state, status_code=status)
    label = getattr(obj, "name", "") or spec.one
    return _redirect(request, session, "success", f"Saved {label}.", f"{PAGE_PATH}#{spec.slug}")


@router.post("/{kind}/{item_id}/delete", name="console_slots_delete")
@console_page(Action.PLANS_WRITE)
def delete(
    request: Request, kind: str, item_id: str, me: ConsoleUser, session: Session, form: PostedForm
) -> Response:
    """Delete a zone or calendar; when it is in use, say why on its edit page."""
    _check_csrf(request, form)
    found = _find(session, me, kind, item_id)
    if found is None or found[0].delete is None:
        return _not_found(request, me)
    spec, obj = found
    assert spec.delete is not None
    label = getattr(obj, "name", "") or spec.one
    try:
        with session.begin_nested():
            spec.delete(session, me.merchant.id, item_id)
    except DomainError as exc:
        text = f"{label} was not deleted. {humanise(exc.detail)}."
        return _redirect(request, session, "error", text, f"{PAGE_PATH}/{spec.slug}/{item_id}")
    return _redirect(request, session, "success", f"Deleted {label}.", f"{PAGE_PATH}#{spec.slug}")
