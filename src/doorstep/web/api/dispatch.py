"""The planning and dispatch API: depots, vehicles, drivers, shifts, plans and drivers' routes.

Handlers parse, call one domain verb and serialise, in one pool-thread call
(:mod:`doorstep.web.calls`). Planning and re-planning run the optimiser for up to minutes, so
they authenticate in a transaction of their own and the verbs open short transactions of their
own (a long-open transaction would hold SQLite's write lock, or row locks on PostgreSQL, for the
whole optimisation).

The POSTs that create or change state (create a depot, vehicle, driver or shift; plan,
publish, re-plan, move a stop) accept an ``Idempotency-Key``, as ``POST /v1/orders`` does: a
client that timed out and retries gets the first answer again instead of a second depot or plan
(see :mod:`doorstep.domain.idempotency`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from doorstep.domain import idempotency
from doorstep.domain.dispatch import moves, planning, publishing, replanning, resources, views
from doorstep.domain.dispatch.plan_schemas import (
    DriverRouteOut,
    PersonRef,
    PlanOut,
    PlanPage,
    plan_out,
    plan_summary_out,
    route_out,
)
from doorstep.domain.dispatch.recipient_changes import recipient_changes
from doorstep.domain.dispatch.schemas import (
    DepotIn,
    DepotOut,
    DepotPatch,
    DriverIn,
    DriverOut,
    DriverPatch,
    MoveIn,
    Page,
    PlanCreate,
    ReplanIn,
    ShiftIn,
    ShiftOut,
    ShiftPatch,
    VehicleIn,
    VehicleOut,
    VehiclePatch,
    depot_out,
    driver_out,
    shift_out,
    vehicle_out,
)
from doorstep.domain.idempotency import Answer, StoreAnswer
from doorstep.geocoding import geocoder_from_settings
from doorstep.settings import Settings
from doorstep.web.calls import ApiCall, ApiCallDep, Caller, IdempotencyKeyDep, PendingKey
from doorstep.web.calls import json_response as _json
from doorstep.web.deps import JSONBody
from doorstep.web.idempotency import KEY_IN_FLIGHT, KEY_REUSED
from doorstep.web.problems import PROBLEM_JSON

router = APIRouter(prefix="/v1", tags=["dispatch"], dependencies=[JSONBody])

Responses = dict[int | str, dict[str, Any]]


def _problems(**codes: str) -> Responses:
    return {
        int(code.removeprefix("e")): {"description": text, "content": {PROBLEM_JSON: {}}}
        for code, text in codes.items()
    }


READ = _problems(e401="Missing or invalid API key", e404="No such object for this merchant")
WRITE = {**READ, **_problems(e422="Validation failed; `errors` names each field")}
DELETE = {**READ, **_problems(e409="Still in use (by a published plan, shifts or positions)")}

Limit = Annotated[int, Query(ge=1, le=500, description="Page size")]
After = Annotated[str | None, Query(description="`next_cursor` of the previous page")]


def _idempotent(responses: Responses) -> Responses:
    """``responses`` with the ``Idempotency-Key`` problems joined to their 409 and 422."""

    def joined(code: int, reason: str) -> str:
        first = responses.get(code, {}).get("description")
        return f"{first}; or {reason}" if first else reason[0].upper() + reason[1:]

    return {**responses, **_problems(e409=joined(409, KEY_IN_FLIGHT), e422=joined(422, KEY_REUSED))}


def _planning_lease(time_limit_s: float | None, settings: Settings) -> timedelta:
    """How long a planning request may hold its key: the search's time limit and the usual
    lease for the rest (loading, travel times, saving). A retry sooner than that is a 409."""
    limit = time_limit_s if time_limit_s is not None else settings.plan_time_limit_s
    return idempotency.IN_FLIGHT_LEASE + timedelta(seconds=limit)


OnSaved = Callable[[Session, views.PlanView], None]


def _created_plan(store: StoreAnswer, make: Callable[[OnSaved], views.PlanView]) -> Answer:
    """The 201 answer for a plan ``make`` plans (or re-plans) and saves, stored with the plan
    in its saving transaction; serialised once, as a day's plan is large."""
    answers: list[Answer] = []

    def saved(session: Session, view: views.PlanView) -> None:
        answers.append(Answer(201, plan_out(view).model_dump(mode="json")))
        store(session, answers[0])

    make(saved)
    return answers[0]


async def _create(
    api: ApiCall,
    idem: PendingKey | None,
    collection: str,
    make: Callable[[Session, Caller], BaseModel],
) -> Response:
    """201 with what ``make`` created (serialised as its ``response_model`` would be) and its
    ``Location``, at most once per ``Idempotency-Key``: a retry replays the first answer."""

    def action(session: Session, caller: Caller) -> Answer:
        return Answer(201, make(session, caller).model_dump(mode="json", by_alias=True))

    return await api.idempotent(
        idem, action, location=lambda answer: f"{router.prefix}/{collection}/{answer.body['id']}"
    )


def _no_content() -> Response:
    return Response(status_code=204)


# --- Depots ---------------------------------------------------------------------------------


@router.post(
    "/depots",
    status_code=201,
    response_model=DepotOut,
    responses=_idempotent(WRITE),
    summary="Create a depot",
)
async def create_depot(body: DepotIn, api: ApiCallDep, idem: IdempotencyKeyDep) -> Response:
    def make(session: Session, c: Caller) -> DepotOut:
        return depot_out(
            resources.create_depot(
                session, c.clock, c.merchant_id, body, geocoder=geocoder_from_settings(c.settings)
            ),
            c.tz,
        )

    return await _create(api, idem, "depots", make)


@router.get("/depots", response_model=Page[DepotOut], responses=READ, summary="List depots")
async def list_depots(api: ApiCallDep, limit: Limit = 100, after: After = None) -> Response:
    def work(session: Session, c: Caller) -> Response:
        rows, cursor = resources.list_depots(session, c.merchant_id, after=after, limit=limit)
        return _json(Page[DepotOut](items=[depot_out(r, c.tz) for r in rows], next_cursor=cursor))

    return await api.read(work)


@router.get("/depots/{depot_id}", response_model=DepotOut, responses=READ, summary="A depot")
async def get_depot(depot_id: str, api: ApiCallDep) -> Response:
    def work(session: Session, c: Caller) -> Response:
        return _json(depot_out(resources.access_depot(session, c.merchant_id, depot_id), c.tz))

    return await api.read(work)


@router.patch(
    "/depots/{depot_id}", response_model=DepotOut, responses=WRITE, summary="Change a depot"
)
async def update_depot(depot_id: str, body: DepotPatch, api: ApiCallDep) -> Response:
    def work(session: Session, c: Caller) -> Response:
        depot = resources.update_depot(
            session, c.merchant_id, depot_id, body, geocoder=geocoder_from_settings(c.settings)
        )
        return _json(depot_out(depot, c.tz))

    return await api.write(work)


@router.delete("/depots/{depot_id}", status_code=204, responses=DELETE, summary="Delete a depot")
async def delete_depot(depot_id: str, api: ApiCallDep) -> Response:
    def work(session: Session, c: Caller) -> Response:
        resources.delete_depot(session, c.merchant_id, depot_id)
        return _no_content()

    return await api.write(work)


# --- Vehicles -------------------------------------------------------------------------------


@router.post(
    "/vehicles",
    status_code=201,
    response_model=VehicleOut,
    responses=_idempotent(WRITE),
    summary="Create a vehicle",
)
async def create_vehicle(body: VehicleIn, api: ApiCallDep, idem: IdempotencyKeyDep) -> Response:
    def make(session: Session, c: Caller) -> VehicleOut:
        return vehicle_out(resources.create_vehicle(session, c.clock, c.merchant_id, body), c.tz)

    return await _create(api, idem, "vehicles", make)


@router.get("/vehicles", response_model=Page[VehicleOut], responses=READ, summary="List vehicles")
async def list_vehicles(api: ApiCallDep, limit: Limit = 100, after: After = None) -> Response:
    def work(session: Session, c: Caller) -> Response:
        rows, cursor = resources.list_vehicles(session, c.merchant_id, after=after, limit=limit)
        items = [vehicle_out(r, c.tz) for r in rows]
        return _json(Page[VehicleOut](items=items, next_cursor=cursor))

    return await api.read(work)


@router.get(
    "/vehicles/{vehicle_id}", response_model=VehicleOut, responses=READ, summary="A vehicle"
)
async def get_vehicle(vehicle_id: str, api: ApiCallDep) -> Response:
    def work(session: Session, c: Caller) -> Response:
        vehicle = resources.access_vehicle(session, c.merchant_id, vehicle_id)
        return _json(vehicle_out(vehicle, c.tz))

    return await api.read(work)


@router.patch(
    "/vehicles/{vehicle_id}",
    response_model=VehicleOut,
    responses=WRITE,
    summary="Change or deactivate a vehicle",
)
async def update_vehicle(vehicle_id: str, body: VehiclePatch, api: ApiCallDep) -> Response:
    def work(session: Session, c: Caller) -> Response:
        vehicle = resources.update_vehicle(session, c.merchant_id, vehicle_id, body)
        return _json(vehicle_out(vehicle, c.tz))

    return await api.write(work)


@router.delete(
    "/vehicles/{vehicle_id}", status_code=204, responses=DELETE, summary="Delete a vehicle"
)
async def delete_vehicle(vehicle_id: str, api: ApiCallDep) -> Response:
    def work(session: Session, c: Caller) -> Response:
        resources.delete_vehicle(session, c.merchant_id, vehicle_id)
        return _no_content()

    return await api.write(work)


# --- Drivers --------------------------------------------------------------------------------


@router.post(
    "/drivers",
    status_code=201,
    response_model=DriverOut,
    responses=_idempotent({**WRITE, **_problems(e409="device_id already registered")}),
    summary="Create a driver",
)
async def create_driver(body: DriverIn, api: ApiCallDep, idem: IdempotencyKeyDep) -> Response:
    def make(session: Session, c: Caller) -> DriverOut:
        return driver_out(resources.create_driver(session, c.clock, c.merchant_id, body), c.tz)

    return await _create(api, idem, "drivers", make)


@router.get("/drivers", response_model=Page[DriverOut], responses=READ, summary="List drivers")
async def list_drivers(api: ApiCallDep, limit: Limit = 100, after: After = None) -> Response:
    def work(session: Session, c: Caller) -> Response:
        rows, cursor = resources.list_drivers(session, c.merchant_id, after=after, limit=limit)
        items = [driver_out(r, c.tz) for r in rows]
        return _json(Page[DriverOut](items=items, next_cursor=cursor))

    return await api.read(work)


@router.get("/drivers/{driver_id}", response_model=DriverOut, responses=READ, summary="A driver")
async def get_driver(driver_id: str, api: ApiCallDep) -> Response:
    def work(session: Session, c: Caller) -> Response:
        return _json(driver_out(resources.access_driver(session, c.merchant_id, driver_id), c.tz))

    return await api.read(work)


@router.patch(
    "/drivers/{driver_id}",
    response_model=DriverOut,
    responses={**WRITE, **_problems(e409="device_id already registered")},
    summary="Change or deactivate a driver",
)
async def update_driver(driver_id: str, body: DriverPatch, api: ApiCallDep) -> Response:
    def work(session: Session, c: Caller) -> Response:
        driver = resources.update_driver(session, c.merchant_id, driver_id, body)
        return _json(driver_out(driver, c.tz))

    return await api.write(work)


@router.delete("/drivers/{driver_id}", status_code=204, responses=DELETE, summary="Delete a driver")
async def delete_driver(driver_id: str, api: ApiCallDep) -> Response:
    def work(session: Session, c: Caller) -> Response:
        resources.delete_driver(session, c.merchant_id, driver_id)
        return _no_content()

    return await api.write(work)


@router.get(
    "/drivers/{driver_id}/route",
    response_model=DriverRouteOut,
    responses=READ,
    summary="A driver's published routes of a day, stops in order",
)
async def driver_route(
    driver_id: str,
    api: ApiCallDep,
    day: Annotated[date | None, Query(alias="date", description="Default: today")] = None,
) -> Response:
    def work(session: Session, c: Caller) -> Response:
        result = publishing.driver_routes(session, c.clock, c.merchant_id, driver_id, day)
        orders = [view.orders[s.order_id] for route, view in result.routes for s in route.stops]
        changes = (
            recipient_changes(session, c.merchant_id, orders, result.routes[0][1].tz)
            if result.routes
            else {}
        )
        return _json(
            DriverRouteOut(
                driver=PersonRef(id=result.driver.id, name=result.driver.name),
                date=result.day,
                routes=[route_out(route, view, changes) for route, view in result.routes],
            )
        )

    return await api.read(work)


# --- Shifts ---------------------------------------------------------------------------------


@router.post(
    "/shifts",
    status_code=201,
    response_model=ShiftOut,
    responses=_idempotent(
        {**WRITE, **_problems(e409="The driver or vehicle has an overlapping shift")}
    ),
    summary="Create a shift",
    description=(
        "A shift that has already ended, or that falls on a day or at hours when its depot is "
        "closed (in the merchant's timezone), is refused with a 422 naming the field."
    ),
)
async def create_shift(body: ShiftIn, api: ApiCallDep, idem: IdempotencyKeyDep) -> Response:
    def make(session: Session, c: Caller) -> ShiftOut:
        return shift_out(resources.create_shift(session, c.clock, c.merchant_id, body), c.tz)

    return await _create(api, idem, "shifts", make)


@router.get("/shifts", response_model=Page[ShiftOut], responses=READ, summary="List shifts")
async def list_shifts(
    api: ApiCallDep,
    day: Annotated[date | None, Query(alias="date", description="Starting that day")] = None,
    depot_id: str | None = None,
    driver_id: str | None = None,
    limit: Limit = 100,
    after: After = None,
) -> Response:
    def work(session: Session, c: Caller) -> Response:
        rows, cursor = resources.list_shifts(
            session,
            c.merchant_id,
            day=day,
            depot_id=depot_id,
            driver_id=driver_id,
            after=after,
            limit=limit,
        )
        return _json(Page[ShiftOut](items=[shift_out(r, c.tz) for r in rows], next_cursor=cursor))

    return await api.read(work)


@router.get("/shifts/{shift_id}", response_model=ShiftOut, responses=READ, summary="A shift")
async def get_shift(shift_id: str, api: ApiCallDep) -> Response:
    def work(session: Session, c: Caller) -> Response:
        return _json(shift_out(resources.access_shift(session, c.merchant_id, shift_id), c.tz))

    return await api.read(work)


@router.patch(
    "/shifts/{shift_id}",
    response_model=ShiftOut,
    responses={**WRITE, **_problems(e409="The driver or vehicle has an overlapping shift")},
    summary="Change a shift (or set its status, e.g. dropped)",
)
async def update_shift(shift_id: str, body: ShiftPatch, api: ApiCallDep) -> Response:
    def work(session: Session, c: Caller) -> Response:
        shift = resources.update_shift(session, c.merchant_id, shift_id, body)
        return _json(shift_out(shift, c.tz))

    return await api.write(work)


@router.delete("/shifts/{shift_id}", status_code=204, responses=DELETE, summary="Delete a shift")
async def delete_shift(shift_id: str, api: ApiCallDep) -> Response:
    def work(session: Session, c: Caller) -> Response:
        resources.delete_shift(session, c.merchant_id, shift_id)
        return _no_content()

    return await api.write(work)


# --- Plans ----------------------------------------------------------------------------------


@router.post(
    "/plans",
    status_code=201,
    response_model=PlanOut,
    responses=_idempotent(WRITE),
    summary="Plan a depot's day (a draft; publish it to dispatch)",
)
async def create_plan(body: PlanCreate, api: ApiCallDep, idem: IdempotencyKeyDep) -> Response:
    def action(store: StoreAnswer, c: Caller) -> Answer:
        return _created_plan(
            store,
            lambda on_saved: planning.create_plan(
                c.runtime.sessions,
                c.clock,
                c.settings,
                merchant_id=c.merchant_id,
                depot_id=body.depot_id,
                day=body.date,
                time_limit_s=body.time_limit_s,
                seed=body.seed,
                max_iterations=body.max_iterations,
                on_saved=on_saved,
            ),
        )

    return await api.own_transactions(
        idem, action, lease=lambda c: _planning_lease(body.time_limit_s, c.settings)
    )


@router.get(
    "/plans",
    response_model=PlanPage,
    responses={**READ, **_problems(e400="Invalid cursor")},
    summary="Plans, newest first (paged like /v1/orders)",
)
async def list_plans(
    api: ApiCallDep,
    day: Annotated[date | None, Query(alias="date")] = None,
    depot_id: str | None = None,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None,
    limit: Limit = 50,
) -> Response:
    def work(session: Session, c: Caller) -> Response:
        found, following = views.list_plans_page(
            session, c.merchant_id, day=day, depot_id=depot_id, cursor=cursor, limit=limit
        )
        return _json(
            PlanPage(
                data=[plan_summary_out(v) for v in found],
                next_cursor=following,
                has_more=following is not None,
            )
        )

    return await api.read(work)


@router.get(
    "/plans/{plan_id}",
    response_model=PlanOut,
    responses=READ,
    summary="A plan with its routes, stops and unassigned orders",
)
async def get_plan(plan_id: str, api: ApiCallDep) -> Response:
    def work(session: Session, c: Caller) -> Response:
        return _json(plan_out(views.load_plan_view(session, c.merchant_id, plan_id)))

    return await api.read(work)


@router.post(
    "/plans/{plan_id}/publish",
    response_model=PlanOut,
    responses=_idempotent(
        {
            **READ,
            **_problems(
                e409="Not a draft, its orders changed, or violations not confirmed "
                "(`confirm_violations`)"
            ),
        }
    ),
    summary="Publish a draft: schedule its orders, supersede the previous plan",
)
async def publish_plan(
    plan_id: str,
    api: ApiCallDep,
    idem: IdempotencyKeyDep,
    confirm_violations: Annotated[
        int | None,
        Query(
            ge=0,
            description=(
                "The number of violations on the plan's routes you accept (0: publish only a "
                "plan without any). When given and the plan has violations in another number, "
                "the answer is a 409 `violations-unconfirmed` problem whose `violations` says "
                "how many. Omitted: published whatever its violations."
            ),
        ),
    ] = None,
) -> Response:
    def action(session: Session, c: Caller) -> Answer:
        view = publishing.publish_plan(
            session,
            c.clock,
            c.merchant_id,
            plan_id,
            actor=c.actor,
            confirm_violations=confirm_violations,
        )
        return Answer(200, plan_out(view).model_dump(mode="json"))

    return await api.idempotent(idem, action)


@router.post(
    "/plans/{plan_id}/replan",
    status_code=201,
    response_model=PlanOut,
    responses=_idempotent({**WRITE, **_problems(e409="Only the published plan can be re-planned")}),
    summary="Re-plan a published plan from where things stand now (a new draft)",
)
async def replan(
    plan_id: str, api: ApiCallDep, idem: IdempotencyKeyDep, body: ReplanIn | None = None
) -> Response:
    change = body or ReplanIn()

    def action(store: StoreAnswer, c: Caller) -> Answer:
        return _created_plan(
            store,
            lambda on_saved: replanning.replan(
                c.runtime.sessions,
                c.clock,
                c.settings,
                merchant_id=c.merchant_id,
                plan_id=plan_id,
                dropped_shift_ids=change.dropped_shift_ids,
                time_limit_s=change.time_limit_s,
                seed=change.seed,
                max_iterations=change.max_iterations,
                on_saved=on_saved,
            ),
        )

    return await api.own_transactions(
        idem, action, lease=lambda c: _planning_lease(change.time_limit_s, c.settings)
    )


@router.post(
    "/plans/{plan_id}/moves",
    response_model=PlanOut,
    responses=_idempotent(
        {**WRITE, **_problems(e409="The stop is under way, or the plan is over")}
    ),
    summary="Move a stop by hand; the routes it touches are recomputed",
)
async def move_stop(
    plan_id: str, body: MoveIn, api: ApiCallDep, idem: IdempotencyKeyDep
) -> Response:
    def action(session: Session, c: Caller) -> Answer:
        moves.move_stop(
            session,
            c.clock,
            c.settings,
            c.merchant_id,
            plan_id,
            order_id=body.order_id,
            to_route_id=body.to_route_id,
            position=body.position,
            actor=c.actor,
        )
        view = views.load_plan_view(session, c.merchant_id, plan_id)
        return Answer(200, plan_out(view).model_dump(mode="json"))

    return await api.idempotent(idem, action)
