"""The console's fleet pages, under ``/console/drivers``: the merchant's drivers, vehicles,
depots and shifts, each kind on a tab of its own (plain links) with a table, a "New …" form
and an edit page per item (``/console/drivers/<kind>/<id>``) to change, deactivate (drivers,
vehicles), drop (shifts) or delete it.

Handlers read the form, call the dispatch verb the JSON API calls
(:mod:`doorstep.domain.dispatch.resources`) with the API's own input models (built in
:mod:`~doorstep.web.pages.fleet_forms`), and redirect with a flash message kept in the session
(Post/Redirect/Get). When the models or the verb object, the same page is drawn again with the
values as typed and each message beside its field; a conflict (a device id already taken,
overlapping shifts, a delete refused while in use) is shown above the form or as the flash.
Each verb runs in a savepoint, so a refusal leaves nothing half done.

Everyone with :attr:`Action.DRIVERS_MANAGE` (owners, dispatchers) may see and change all of
it; other roles get the 403 page. Another merchant's object is a 404 page.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from doorstep.clock import Clock
from doorstep.domain.accounts.users import Action
from doorstep.domain.dispatch import resources, signin
from doorstep.domain.dispatch.driving_schemas import LoginLinkOut, login_link_out
from doorstep.domain.dispatch.models import Shift
from doorstep.domain.dispatch.schemas import DAYS, DriverPatch, ShiftPatch, VehiclePatch
from doorstep.domain.errors import DomainError, NotFound
from doorstep.web.csrf import FIELD_NAME, csrf_ok
from doorstep.web.deps import ClockDep, SettingsDep
from doorstep.web.pages import fleet_forms as forms
from doorstep.web.pages.auth import ConsoleForbidden, ConsoleUser
from doorstep.web.pages.calls import console_page
from doorstep.web.pages.console import render_console
from doorstep.web.pages.dispatch_view import Fmt, today_for
from doorstep.web.pages.fleet_device import device_card
from doorstep.web.pages.fleet_forms import FormInvalid, FormState, humanise
from doorstep.web.pages.fleet_view import (
    PROFILE_LABELS,
    Choice,
    Fleet,
    day_links,
    hours_summary,
    load_fleet,
    shift_choices,
    shift_rows,
    vehicle_summary,
)

__all__ = ["KINDS", "router", "tab_url"]

router = APIRouter(prefix="/console/drivers", include_in_schema=False)

PAGE_PATH = "/console/drivers"
FLASH_KEY = "fleet_flash"
FORM_EXPIRED = "the form expired; reload the page and try again"
MAX_VALUE = 2000  # characters kept of any posted value (the models allow far fewer)


async def _posted_form(request: Request) -> dict[str, str]:
    """The posted fields (text only; the last of repeated names)."""
    form = await request.form(max_files=0, max_fields=100)
    return {k: v[:MAX_VALUE] for k, v in form.multi_items() if isinstance(v, str)}


PostedForm = Annotated[dict[str, str], Depends(_posted_form)]


# --- The four kinds -------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """One kind of fleet object: its words, and the verbs and form conversions for it."""

    slug: str  # drivers | vehicles | depots | shifts (the URL segment)
    one: str  # "driver"
    title: str  # "Drivers"
    access: Callable[[Session, str, str], Any]
    create: Callable[[Session, Clock, str, Mapping[str, str], ZoneInfo], Any]
    update: Callable[[Session, str, str, Mapping[str, str], ZoneInfo], Any]
    delete: Callable[[Session, str, str], None]
    values: Callable[[Any, ZoneInfo], dict[str, str]]
    # State changes the edit page offers: URL segment -> (patch, flash text after the label).
    changes: Mapping[str, tuple[Any, str]]
    patch: Callable[[Session, str, str, Any], Any] | None = None


def tab_url(slug: str, day: date | None = None) -> str:
    """The tab of a kind (the shifts of ``day``)."""
    url = PAGE_PATH if slug == "drivers" else f"{PAGE_PATH}/{slug}"
    return f"{url}?date={day.isoformat()}" if day else url


KINDS: dict[str, Kind] = {
    "drivers": Kind(
        "drivers",
        "driver",
        "Drivers",
        access=resources.access_driver,
        create=lambda s, c, m, v, tz: resources.create_driver(s, c, m, forms.driver_in(v)),
        update=lambda s, m, i, v, tz: resources.update_driver(s, m, i, forms.driver_patch(v)),
        delete=resources.delete_driver,
        values=lambda o, tz: forms.driver_values(o),
        changes={
            "deactivate": (
                DriverPatch(active=False),
                "is deactivated: planning leaves them out until they are activated again.",
            ),
            "activate": (DriverPatch(active=True), "is active again."),
        },
        patch=resources.update_driver,
    ),
    "vehicles": Kind(
        "vehicles",
        "vehicle",
        "Vehicles",
        access=resources.access_vehicle,
        create=lambda s, c, m, v, tz: resources.create_vehicle(s, c, m, forms.vehicle_in(v)),
        update=lambda s, m, i, v, tz: resources.update_vehicle(s, m, i, forms.vehicle_patch(v)),
        delete=resources.delete_vehicle,
        values=lambda o, tz: forms.vehicle_values(o),
        changes={
            "deactivate": (
                VehiclePatch(active=False),
                "is deactivated: planning leaves it out until it is activated again.",
            ),
            "activate": (VehiclePatch(active=True), "is active again."),
        },
        patch=resources.update_vehicle,
    ),
    "depots": Kind(
        "depots",
        "depot",
        "Depots",
        access=resources.access_depot,
        create=lambda s, c, m, v, tz: resources.create_depot(s, c, m, forms.depot_in(v)),
        update=lambda s, m, i, v, tz: resources.update_depot(s, m, i, forms.depot_patch(v)),
        delete=resources.delete_depot,
        values=lambda o, tz: forms.depot_values(o),
        changes={},
    ),
    "shifts": Kind(
        "shifts",
        "shift",
        "Shifts",
        access=resources.access_shift,
        create=lambda s, c, m, v, tz: resources.create_shift(s, c, m, forms.shift_in(v, tz)),
        update=lambda s, m, i, v, tz: resources.update_shift(s, m, i, forms.shift_patch(v, tz)),
        delete=resources.delete_shift,
        values=forms.shift_values,
        changes={
            "drop": (ShiftPatch(status="dropped"), "is dropped: planning leaves it out."),
            "restore": (ShiftPatch(status="planned"), "is planned again."),
        },
        patch=resources.update_shift,
    ),
}


# --- Helpers --------------------------------------------------------------------------------


def _check_csrf(request: Request, form: Mapping[str, str]) -> None:
    if not csrf_ok(request, form.get(FIELD_NAME)):
        raise ConsoleForbidden(FORM_EXPIRED)


def _tz(me: ConsoleUser) -> ZoneInfo:
    return ZoneInfo(me.merchant.timezone)


def _flash(request: Request, kind: str, text: str) -> None:
    request.session[FLASH_KEY] = {"kind": kind, "text": text}


def _redirect(
    request: Request, session: Session, flash: tuple[str, str], target: str
) -> RedirectResponse:
    """Commit, keep the flash message and redirect (Post/Redirect/Get). The commit comes
    first because the request's session otherwise commits only after the answer is sent,
    and the browser's next request could read the page from before the change."""
    session.commit()
    _flash(request, *flash)
    return RedirectResponse(target, status_code=303)


def _pop_flash(request: Request) -> dict[str, str] | None:
    flash = request.session.pop(FLASH_KEY, None)
    return flash if isinstance(flash, dict) else None


def _refusal(exc: DomainError) -> str:
    """A verb's refusal in a sentence (with its field messages, if any)."""
    fields = "; ".join(humanise(e.message) for e in exc.errors)
    return humanise(exc.detail) + (f": {fields}" if fields else "") + "."


def _typed(form: Mapping[str, str]) -> dict[str, str]:
    """The values as typed, to draw the form again."""
    return {k: v for k, v in form.items() if k != FIELD_NAME}


def _label(session: Session, merchant_id: str, obj: Any, tz: ZoneInfo) -> str:
    """How a flash message names an object."""
    if isinstance(obj, Shift):
        driver = resources.access_driver(session, merchant_id, obj.driver_id)
        start = obj.start_at.astimezone(tz)
        return f"{driver.name}'s shift of {Fmt.day(start.date())} at {start:%H:%M}"
    return str(obj.name)


def _home_of(kind: Kind, obj: Any, tz: ZoneInfo) -> str:
    """The tab that lists ``obj``, scrolled to its row."""
    day = obj.start_at.astimezone(tz).date() if isinstance(obj, Shift) else None
    return f"{tab_url(kind.slug, day)}#row-{obj.id}"


def _parse_day(text: str | None, today: date) -> date:
    try:
        return date.fromisoformat(text) if text else today
    except ValueError:
        return today


def _new_values(kind: Kind, me: ConsoleUser, fleet: Fleet, day: date) -> dict[str, str]:
    """What a "New …" form starts with."""
    if kind.slug == "vehicles":
        return {"profile": "van"}
    if kind.slug == "depots":
        return {"country": me.merchant.country or ""}
    if kind.slug == "shifts":
        values = {
            "start_at": f"{day.isoformat()}T08:00",
            "end_at": f"{day.isoformat()}T17:00",
            "return_to_depot": "1",
        }
        if len(fleet.depots) == 1:
            values["depot_id"] = fleet.depots[0].id
        return values
    return {}


def _common(kind: Kind, fleet: Fleet) -> dict[str, Any]:
    """What every fleet template uses."""
    return {
        "kind": kind,
        "fleet": fleet,
        "counts": {
            "drivers": len(fleet.drivers),
            "vehicles": len(fleet.vehicles),
            "depots": len(fleet.depots),
        },
        "kinds": list(KINDS.values()),
        "tab_url": tab_url,
        "fmt": Fmt,
        "days": forms.DAY_LABELS,
        "day_keys": DAYS,
        "profiles": PROFILE_LABELS,
        "profile_choices": [Choice(k, v) for k, v in PROFILE_LABELS.items()],
        "vehicle_summary": vehicle_summary,
        "hours_summary": hours_summary,
    }


def _tab_page(
    request: Request,
    me: ConsoleUser,
    session: Session,
    clock: Clock,
    kind: Kind,
    *,
    day_text: str | None = None,
    form: FormState | None = None,
    status_code: int = 200,
) -> Response:
    """A kind's tab: its table and the "New …" form (``form`` when drawn again)."""
    fleet = load_fleet(session, me.merchant.id)
    today = today_for(clock, me.merchant.timezone)
    day = _parse_day(day_text, today)
    context = {
        **_common(kind, fleet),
        "flash": _pop_flash(request),
        "form": form or FormState(_new_values(kind, me, fleet, day)),
        "action": f"{PAGE_PATH}/{kind.slug}/new",
    }
    if kind.slug == "shifts":
        previous_day, next_day = day_links(day)
        context |= {
            "day": day,
            "today": today,
            "previous_day": previous_day,
            "next_day": next_day,
            "rows": shift_rows(session, me.merchant.id, fleet, day),
            "choices": shift_choices(fleet, keep=form.values if form else None),
        }
    return render_console(request, me, "console/fleet.html", context, status_code=status_code)


def _edit_page(
    request: Request,
    me: ConsoleUser,
    session: Session,
    kind: Kind,
    obj: Any,
    form: FormState,
    *,
    status_code: int = 200,
    login: LoginLinkOut | None = None,
) -> Response:
    """An item's edit page: its form, its state changes and delete (and for a driver, the
    sign-in link and code just issued, shown once)."""
    tz = _tz(me)
    fleet = load_fleet(session, me.merchant.id)
    context = {
        **_common(kind, fleet),
        "obj": obj,
        "tz": tz,
        "label": _label(session, me.merchant.id, obj, tz),
        "back": _home_of(kind, obj, tz),
        "flash": _pop_flash(request),
        "form": form,
        "action": f"{PAGE_PATH}/{kind.slug}/{obj.id}",
        "choices": shift_choices(fleet, keep=form.values) if kind.slug == "shifts" else {},
        "device": device_card(request, obj) if kind.slug == "drivers" else None,
        "login": login,
    }
    return render_console(request, me, "console/fleet_edit.html", context, status_code=status_code)


def _not_found(request: Request, me: ConsoleUser, kind: str) -> Response:
    """The 404 page, for an unknown kind or another merchant's (or no) object."""
    what = KINDS[kind].one if kind in KINDS else "page"
    return render_console(
        request,
        me,
        "error.html",
        {"title": "Not found", "message": f"There is no such {what} in {me.merchant.name}."},
        status_code=404,
    )


def _find(session: Session, me: ConsoleUser, kind: str, item_id: str) -> tuple[Kind, Any] | None:
    """The kind and the merchant's object, or None (a 404) for either unknown."""
    spec = KINDS.get(kind)
    if spec is None:
        return None
    try:
        return spec, spec.access(session, me.merchant.id, item_id)
    except NotFound:
        return None


# --- Pages ----------------------------------------------------------------------------------


@router.get("", name="console_fleet")
@console_page(Action.DRIVERS_MANAGE)
def drivers_tab(request: Request, me: ConsoleUser, session: Session, clock: ClockDep) -> Response:
    """The drivers' tab (the section's start)."""
    return _tab_page(request, me, session, clock, KINDS["drivers"])


@router.get("/{kind}", name="console_fleet_tab")
@console_page(Action.DRIVERS_MANAGE)
def kind_tab(
    request: Request,
    kind: str,
    me: ConsoleUser,
    session: Session,
    clock: ClockDep,
    day_text: Annotated[str | None, Query(alias="date", max_length=32)] = None,
) -> Response:
    """A kind's tab; shifts are those of ``date`` (default: today, merchant's timezone)."""
    spec = KINDS.get(kind)
    if spec is None:
        return _not_found(request, me, kind)
    return _tab_page(request, me, session, clock, spec, day_text=day_text)


@router.post("/{kind}/new", name="console_fleet_create")
@console_page(Action.DRIVERS_MANAGE)
def create(
    request: Request,
    kind: str,
    me: ConsoleUser,
    session: Session,
    clock: ClockDep,
    form: PostedForm,
) -> Response:
    """Add a driver, vehicle, depot or shift from the "New …" form."""
    _check_csrf(request, form)
    spec = KINDS.get(kind)
    if spec is None:
        return _not_found(request, me, kind)
    tz = _tz(me)
    state = FormState(_typed(form))
    try:
        with session.begin_nested():
            obj = spec.create(session, clock, me.merchant.id, form, tz)
            label = _label(session, me.merchant.id, obj, tz)
    except FormInvalid as exc:
        state.add_field_errors(spec.slug, exc.errors)
        status = 422
    except DomainError as exc:
        state.add_domain_error(spec.slug, exc)
        status = exc.status_code
    else:
        return _redirect(request, session, ("success", f"Added {label}."), _home_of(spec, obj, tz))
    return _tab_page(
        request, me, session, clock, spec, day_text=form.get("date"), form=state, status_code=status
    )


@router.get("/{kind}/{item_id}", name="console_fleet_item")
@console_page(Action.DRIVERS_MANAGE)
def edit_page(
    request: Request, kind: str, item_id: str, me: ConsoleUser, session: Session
) -> Response:
    """An item's edit form, with its state changes and delete."""
    found = _find(session, me, kind, item_id)
    if found is None:
        return _not_found(request, me, kind)
    spec, obj = found
    return _edit_page(request, me, session, spec, obj, FormState(spec.values(obj, _tz(me))))


@router.post("/{kind}/{item_id}", name="console_fleet_update")
@console_page(Action.DRIVERS_MANAGE)
def update(
    request: Request,
    kind: str,
    item_id: str,
    me: ConsoleUser,
    session: Session,
    form: PostedForm,
) -> Response:
    """Save the edit form."""
    _check_csrf(request, form)
    found = _find(session, me, kind, item_id)
    if found is None:
        return _not_found(request, me, kind)
    spec, obj = found
    tz = _tz(me)
    state = FormState(_typed(form))
    try:
        with session.begin_nested():
            obj = spec.update(session, me.merchant.id, item_id, form, tz)
            label = _label(session, me.merchant.id, obj, tz)
    except FormInvalid as exc:
        state.add_field_errors(spec.slug, exc.errors)
        status = 422
    except DomainError as exc:
        state.add_domain_error(spec.slug, exc)
        status = exc.status_code
    else:
        return _redirect(request, session, ("success", f"Saved {label}."), _home_of(spec, obj, tz))
    obj = spec.access(session, me.merchant.id, item_id)  # as stored: the savepoint rolled back
    return _edit_page(request, me, session, spec, obj, state, status_code=status)


@router.post("/{kind}/{item_id}/delete", name="console_fleet_delete")
@console_page(Action.DRIVERS_MANAGE)
def delete(
    request: Request,
    kind: str,
    item_id: str,
    me: ConsoleUser,
    session: Session,
    form: PostedForm,
) -> Response:
    """Delete an item; when it is still in use, say why on its edit page."""
    _check_csrf(request, form)
    found = _find(session, me, kind, item_id)
    if found is None:
        return _not_found(request, me, kind)
    spec, obj = found
    tz = _tz(me)
    label, home = _label(session, me.merchant.id, obj, tz), _home_of(spec, obj, tz)
    try:
        with session.begin_nested():
            spec.delete(session, me.merchant.id, item_id)
    except DomainError as exc:
        refused = ("error", f"{label} was not deleted. {_refusal(exc)}")
        return _redirect(request, session, refused, f"{PAGE_PATH}/{spec.slug}/{item_id}")
    return _redirect(request, session, ("success", f"Deleted {label}."), home.partition("#")[0])


@router.post("/drivers/{item_id}/login-link", name="console_driver_login_link")
@console_page(Action.DRIVERS_MANAGE)
def driver_login_link(
    request: Request,
    item_id: str,
    me: ConsoleUser,
    session: Session,
    clock: ClockDep,
    settings: SettingsDep,
    form: PostedForm,
) -> Response:
    """Issue a driver's one-time sign-in link and code and show them on the driver's page
    (answered directly, not redirected: they are never kept in the session cookie)."""
    _check_csrf(request, form)
    found = _find(session, me, "drivers", item_id)
    if found is None:
        return _not_found(request, me, "drivers")
    spec, obj = found
    try:
        issued = signin.issue_login(
            session,
            clock,
            me.merchant.id,
            item_id,
            secret_key=settings.effective_secret_key,
            base_url=settings.base_url,
            ttl=timedelta(seconds=settings.driver_login_ttl_s),
        )
    except DomainError as exc:
        refused = ("error", f"No sign-in link was made. {_refusal(exc)}")
        return _redirect(request, session, refused, f"{PAGE_PATH}/drivers/{item_id}")
    login = login_link_out(issued, _tz(me))
    state = FormState(spec.values(obj, _tz(me)))
    return _edit_page(request, me, session, spec, obj, state, login=login)


@router.post("/{kind}/{item_id}/{change}", name="console_fleet_change")
@console_page(Action.DRIVERS_MANAGE)
def change_state(
    request: Request,
    kind: str,
    item_id: str,
    change: str,
    me: ConsoleUser,
    session: Session,
    form: PostedForm,
) -> Response:
    """Deactivate or activate a driver or vehicle; drop or restore a shift."""
    _check_csrf(request, form)
    found = _find(session, me, kind, item_id)
    if found is None:
        return _not_found(request, me, kind)
    spec, obj = found
    if change not in spec.changes or spec.patch is None:
        return _not_found(request, me, "page")
    patch, outcome = spec.changes[change]
    tz = _tz(me)
    label = _label(session, me.merchant.id, obj, tz)
    try:
        with session.begin_nested():
            spec.patch(session, me.merchant.id, item_id, patch)
    except DomainError as exc:
        refused = ("error", f"{label} was not changed. {_refusal(exc)}")
        return _redirect(request, session, refused, f"{PAGE_PATH}/{spec.slug}/{item_id}")
    done = ("success", f"{label[:1].upper()}{label[1:]} {outcome}")
    return _redirect(request, session, done, _home_of(spec, obj, tz))
