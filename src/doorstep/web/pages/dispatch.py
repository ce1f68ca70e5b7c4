"""The dispatcher console: a depot's day on a map beside its routes, stops and the orders left
out; plan the day, publish, re-plan from now and move stops by hand, all from HTML forms.

Handlers parse the form, call one dispatch verb and redirect back (Post/Redirect/Get) with a
flash message kept in the session. A domain error (no shifts that day, a stop already made, a
plan superseded meanwhile) becomes that message, never a 500; the verb runs in a transaction
of its own, rolled back on the error. Planning and re-planning run the optimiser between short
transactions, so every form handler first commits the transaction that authenticated the user
(as the JSON API does): nothing holds the database's write lock while the optimiser searches.

What the page shows is read and shaped in :mod:`~doorstep.web.pages.dispatch_view`. The map is
drawn by ``static/dispatch.js`` from :func:`~.dispatch_view.plan_geojson` (the plan export with
colours and display times added); the route exports have session-authenticated twins here,
since ``/v1/...`` wants an API key.

Who may do what comes from the permission table: :attr:`Action.PLANS_READ` to see the page
and download, :attr:`Action.PLANS_WRITE` for every button (others see the page read-only).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from doorstep.db.engine import transaction
from doorstep.domain.accounts.users import Action
from doorstep.domain.dispatch import moves, planning, publishing, replanning, views
from doorstep.domain.dispatch.exports import (
    load_route_sheet,
    to_geojson,
    to_gpx,
    to_manifest_csv,
)
from doorstep.domain.dispatch.plan_schemas import plan_summary_out
from doorstep.domain.errors import Actor, DomainError
from doorstep.domain.orders.location import set_location
from doorstep.web.csrf import csrf_ok
from doorstep.web.deps import ClockDep, RuntimeDep
from doorstep.web.pages.auth import ConsoleForbidden, ConsoleUser
from doorstep.web.pages.calls import console_page
from doorstep.web.pages.console import render_console
from doorstep.web.pages.dispatch_marks import STOP_STATUS
from doorstep.web.pages.dispatch_view import (
    Fmt,
    attention_for,
    load_dispatch_day,
    map_collection,
    today_for,
)

__all__ = ["page_url", "router"]

router = APIRouter(prefix="/console/dispatch", include_in_schema=False)

PAGE_PATH = "/console/dispatch"
FLASH_KEY = "dispatch_flash"
FORM_EXPIRED = "the form expired; reload the page and try again"


# --- Form fields and helpers ---------------------------------------------------------------

CsrfField = Annotated[str, Form(max_length=200)]
IdField = Annotated[str, Form(max_length=64)]


def _check_csrf(request: Request, token: str) -> None:
    if not csrf_ok(request, token):
        raise ConsoleForbidden(FORM_EXPIRED)


def _actor(me: ConsoleUser) -> Actor:
    return Actor("user", me.user.id)


def page_url(depot_id: str | None = None, day: date | str | None = None, plan_id: str = "") -> str:
    """The page for a depot, day and plan (whichever are given)."""
    query = {k: str(v) for k, v in (("depot", depot_id), ("date", day), ("plan", plan_id)) if v}
    return PAGE_PATH + ("?" + urlencode(query) if query else "")


def _flash(request: Request, kind: str, text: str) -> None:
    request.session[FLASH_KEY] = {"kind": kind, "text": text}


def _error_text(exc: DomainError) -> str:
    fields = "; ".join(e.message for e in exc.errors)
    return f"{exc.detail[:1].upper()}{exc.detail[1:]}" + (f": {fields}." if fields else ".")


def _act(
    request: Request, back: str, action: Callable[[], tuple[str, str, str]]
) -> RedirectResponse:
    """Run ``action`` (which answers a flash kind, its text and where to go), or turn its
    domain error into an error message; then redirect (Post/Redirect/Get)."""
    try:
        kind, text, target = action()
    except DomainError as exc:
        kind, text, target = "error", _error_text(exc), back
    _flash(request, kind, text)
    return RedirectResponse(target, status_code=303)


def _planned_text(view: views.PlanView, verb: str) -> str:
    out = plan_summary_out(view)
    used = sum(1 for r in view.plan.routes if r.stops)
    text = (
        f"{verb}: {out.stop_count} stop{'s' if out.stop_count != 1 else ''} on {used} "
        f"route{'s' if used != 1 else ''} in {Fmt.seconds(out.stats.get('solve_s'))}."
    )
    if out.unassigned_count:
        text += f" {out.unassigned_count} order(s) could not be planned; see why below."
    return text


# --- Pages and form handlers ----------------------------------------------------------------


@router.get("", name="console_dispatch")
@console_page(Action.PLANS_READ)
def dispatch_page(
    request: Request,
    me: ConsoleUser,
    session: Session,
    clock: ClockDep,
    runtime: RuntimeDep,
    depot: Annotated[str | None, Query(max_length=64)] = None,
    day_text: Annotated[str | None, Query(alias="date", max_length=32)] = None,
    plan: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """A depot's day: pickers, the plan on a map beside its routes, the orders left out."""
    data = load_dispatch_day(session, clock, me, depot_id=depot, day_text=day_text, plan_id=plan)
    flash = request.session.pop(FLASH_KEY, None)
    shown = data.shown
    return render_console(
        request,
        me,
        "console/dispatch.html",
        {
            "data": data,
            "panel": shown,
            "flash": flash if isinstance(flash, dict) else None,
            "can_write": me.can(Action.PLANS_WRITE),
            "time_limit": Fmt.limit(runtime.settings.plan_time_limit_s),
            "today": today_for(clock, me.merchant.timezone),
            "fmt": Fmt,
            "marks": STOP_STATUS,
            "page_url": page_url,
            "previous_day": data.day - timedelta(days=1),
            "next_day": data.day + timedelta(days=1),
            "geojson_url": f"{PAGE_PATH}/plans/{shown.plan.id}.geojson" if shown else "",
            # Late and at-risk stops first; the page keeps them current over SSE.
            "attention": attention_for(session, clock, shown, me.merchant.id, me.merchant.timezone),
            "events_url": f"{PAGE_PATH}/events",
        },
    )


@router.post("/plan", name="console_dispatch_plan")
@console_page(Action.PLANS_WRITE, own_transactions=True)
def plan_day(
    request: Request,
    me: ConsoleUser,
    runtime: RuntimeDep,
    csrf_token: CsrfField = "",
    depot: IdField = "",
    day_text: Annotated[str, Form(alias="date", max_length=32)] = "",
) -> Response:
    """Plan the depot's day with the default time limit; show the new draft."""
    _check_csrf(request, csrf_token)
    back = page_url(depot, day_text)

    def action() -> tuple[str, str, str]:
        try:
            day = date.fromisoformat(day_text)
        except ValueError:
            return "error", "Choose a day to plan (YYYY-MM-DD).", back
        view = planning.create_plan(
            runtime.sessions,
            runtime.clock,
            runtime.settings,
            merchant_id=me.merchant.id,
            depot_id=depot,
            day=day,
        )
        text = _planned_text(view, "Planned a draft") + " Review it, then publish."
        return "success", text, page_url(view.plan.depot_id, view.plan.date, view.plan.id)

    return _act(request, back, action)


@router.post("/plans/{plan_id}/publish", name="console_dispatch_publish")
@console_page(Action.PLANS_WRITE, own_transactions=True)
def publish(
    request: Request,
    plan_id: str,
    me: ConsoleUser,
    runtime: RuntimeDep,
    csrf_token: CsrfField = "",
    depot: IdField = "",
    day_text: Annotated[str, Form(alias="date", max_length=32)] = "",
    confirm_violations: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Publish a draft: its orders are scheduled and the drivers get their routes. A plan with
    violations is published only when the form confirms their number (the "Publish anyway
    with N problems" box); without it, the page says how many and asks."""
    _check_csrf(request, csrf_token)
    confirmed = int(confirm_violations) if confirm_violations.isdigit() else 0

    back = page_url(depot, day_text, plan_id)

    def action() -> tuple[str, str, str]:
        try:
            with transaction(runtime.sessions) as session:
                view = publishing.publish_plan(
                    session,
                    runtime.clock,
                    me.merchant.id,
                    plan_id,
                    actor=_actor(me),
                    confirm_violations=confirmed,
                )
        except publishing.UnconfirmedViolations as exc:
            count = int(exc.extensions["violations"])
            noun = "problem" if count == 1 else "problems"
            return (
                "warning",
                f"Not published: this plan has {count} {noun} on its routes. Fix "
                f"{'it' if count == 1 else 'them'}, or tick “Publish anyway, with {count} "
                f"{noun}” and publish again.",
                back,
            )
        routes = sum(1 for r in view.plan.routes if r.stops)
        text = f"Published: the drivers of {routes} route(s) now have their stops."
        return "success", text, page_url(view.plan.depot_id, view.plan.date, view.plan.id)

    return _act(request, back, action)


@router.post("/plans/{plan_id}/replan", name="console_dispatch_replan")
@console_page(Action.PLANS_WRITE, own_transactions=True)
def replan(
    request: Request,
    plan_id: str,
    me: ConsoleUser,
    runtime: RuntimeDep,
    csrf_token: CsrfField = "",
    depot: IdField = "",
    day_text: Annotated[str, Form(alias="date", max_length=32)] = "",
    dropped: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Re-plan the published plan from where things stand now (a new draft), optionally
    without some shifts (a driver off sick, a van broken down)."""
    _check_csrf(request, csrf_token)

    def action() -> tuple[str, str, str]:
        view = replanning.replan(
            runtime.sessions,
            runtime.clock,
            runtime.settings,
            merchant_id=me.merchant.id,
            plan_id=plan_id,
            dropped_shift_ids=dropped or [],
        )
        changes = (view.plan.stats or {}).get("changes") or {}
        text = _planned_text(view, "Re-planned from now") + (
            f" Compared with the published plan: {len(changes.get('added', []))} added, "
            f"{len(changes.get('removed', []))} removed, {changes.get('moved_count', 0)} moved."
            " Review the draft, then publish it."
        )
        return "success", text, page_url(view.plan.depot_id, view.plan.date, view.plan.id)

    return _act(request, page_url(depot, day_text, plan_id), action)


@router.post("/plans/{plan_id}/moves", name="console_dispatch_move")
@console_page(Action.PLANS_WRITE, own_transactions=True)
def move(
    request: Request,
    plan_id: str,
    me: ConsoleUser,
    runtime: RuntimeDep,
    csrf_token: CsrfField = "",
    order_id: IdField = "",
    to_route_id: IdField = "",
    position: Annotated[str, Form(max_length=10)] = "",
    depot: IdField = "",
    day_text: Annotated[str, Form(alias="date", max_length=32)] = "",
) -> Response:
    """Move a stop (or place an unassigned order) at a 1-based ``position`` on a route; what
    the move breaks is shown as the routes' violations."""
    _check_csrf(request, csrf_token)
    back = page_url(depot, day_text, plan_id)

    def action() -> tuple[str, str, str]:
        try:
            place = int(position)
        except ValueError:
            return "error", "The position must be a whole number (1 = first stop).", back
        try:
            with transaction(runtime.sessions) as session:
                moves.move_stop(
                    session,
                    runtime.clock,
                    runtime.settings,
                    me.merchant.id,
                    plan_id,
                    order_id=order_id,
                    to_route_id=to_route_id,
                    position=place - 1,
                    actor=_actor(me),
                )
                view = views.load_plan_view(session, me.merchant.id, plan_id)
        except DomainError as exc:
            if any(e.field == "position" for e in exc.errors):
                return (
                    "error",
                    f"Position {place} is not possible on that route: choose from the first "
                    "stop not yet made to one past its last stop.",
                    back,
                )
            raise
        dest = next(r for r in view.plan.routes if r.id == to_route_id)
        stop = next(s for s in dest.stops if s.order_id == order_id)
        order = view.orders[order_id]
        driver = view.drivers[dest.driver_id]
        text = f"Moved {order.reference} to {driver.name}'s route as stop {stop.sequence}."
        broken = [str(v.get("detail", "")) for r in view.plan.routes for v in r.violations or []]
        target = page_url(view.plan.depot_id, view.plan.date, view.plan.id)
        if broken:
            return "warning", f"{text} It breaks: {'; '.join(broken)}.", target
        return "success", text, target

    return _act(request, back, action)


@router.post("/orders/{order_id}/location", name="console_dispatch_place_order")
@console_page(Action.PLANS_WRITE, own_transactions=True)
def place_order(
    request: Request,
    order_id: str,
    me: ConsoleUser,
    runtime: RuntimeDep,
    csrf_token: CsrfField = "",
    lat: Annotated[str, Form(max_length=32)] = "",
    lon: Annotated[str, Form(max_length=32)] = "",
    depot: IdField = "",
    day_text: Annotated[str, Form(alias="date", max_length=32)] = "",
) -> Response:
    """Place an order whose address could not be found: one of its candidates or a spot
    the dispatcher gives; it is planned by the next plan."""
    _check_csrf(request, csrf_token)
    back = page_url(depot, day_text)

    def action() -> tuple[str, str, str]:
        try:
            point = float(lat.replace(",", ".")), float(lon.replace(",", "."))
        except ValueError:
            return "error", "Latitude and longitude must be numbers, e.g. 43.7384 and 7.4246.", back
        with transaction(runtime.sessions) as session:
            order = set_location(
                session,
                runtime.clock,
                me.merchant.id,
                order_id,
                lat=point[0],
                lon=point[1],
                actor=_actor(me),
            )
            reference = order.reference
        text = f"Placed {reference} at {point[0]:.5f}, {point[1]:.5f}; plan the day again"
        text += " to include it."
        return "success", text, back

    return _act(request, back, action)


# --- Data for the map and the exports -------------------------------------------------------


def _attachment(body: str | bytes, media_type: str, filename: str) -> Response:
    return Response(
        body,
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/plans/{plan_id}.geojson", name="console_dispatch_plan_geojson")
@console_page(Action.PLANS_READ)
def plan_map_data(plan_id: str, me: ConsoleUser, session: Session, clock: ClockDep) -> Response:
    """The plan for the map: GeoJSON with colours, display times, stop statuses and problems,
    the orders left out and the vehicles (404 for other merchants' plans, as a problem
    document)."""
    collection = map_collection(session, clock, me.merchant.id, me.merchant.timezone, plan_id)
    return Response(
        json.dumps(collection),
        media_type="application/geo+json",
        headers={"Cache-Control": "no-store"},
    )


@router.get("/routes/{route_id}.geojson", name="console_dispatch_route_geojson")
@console_page(Action.PLANS_READ)
def route_geojson(route_id: str, me: ConsoleUser, session: Session) -> Response:
    """One route as GeoJSON (RFC 7946), to download."""
    sheet = load_route_sheet(session, me.merchant.id, route_id)
    return _attachment(
        json.dumps(to_geojson([sheet])), "application/geo+json", f"route-{route_id}.geojson"
    )


@router.get("/routes/{route_id}.gpx", name="console_dispatch_route_gpx")
@console_page(Action.PLANS_READ)
def route_gpx(route_id: str, me: ConsoleUser, session: Session) -> Response:
    """One route as GPX 1.1, for a navigation app."""
    sheet = load_route_sheet(session, me.merchant.id, route_id)
    return _attachment(to_gpx(sheet), "application/gpx+xml", f"route-{route_id}.gpx")


@router.get("/routes/{route_id}.csv", name="console_dispatch_route_csv")
@console_page(Action.PLANS_READ)
def route_csv(route_id: str, me: ConsoleUser, session: Session) -> Response:
    """One route's printable manifest (CSV, local times, with a BOM for spreadsheets)."""
    sheet = load_route_sheet(session, me.merchant.id, route_id)
    body = ("\ufeff" + to_manifest_csv(sheet)).encode("utf-8")
    return _attachment(body, "text/csv; charset=utf-8", f"manifest-{route_id}.csv")
