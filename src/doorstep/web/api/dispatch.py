"""The planning and dispatch API: depots, vehicles, drivers, shifts, plans and drivers' routes.

Handlers parse, call one domain verb and serialise. Planning and re-planning run the optimiser
for up to minutes, so their merchant dependency ends the authentication transaction first and
the verbs open short transactions of their own (a long-open transaction would hold SQLite's
write lock, or row locks on PostgreSQL, for the whole optimisation).

The POSTs that create or change state (create a depot, vehicle, driver or shift; plan,
publish, re-plan, move a stop) accept an ``Idempotency-Key``, as ``POST /v1/orders`` does: a
client that timed out and retries gets the first answer again instead of a second depot or plan
(see :mod:`doorstep.domain.idempotency`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from doorstep.clock import Clock
from doorstep.domain import idempotency
from doorstep.domain.accounts.models import Merchant
from doorstep.domain.dispatch import moves, planning, publishing, replanning, resources, views
from doorstep.domain.dispatch.plan_schemas import (
    DriverRouteOut,
    PersonRef,
    PlanOut,
    PlanSummaryOut,
    plan_out,
    plan_summary_out,
    route_out,
)
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
from doorstep.domain.idempotency import Answer, IdempotentRequest, StoreAnswer
from doorstep.geocoding import geocoder_from_settings
from doorstep.runtime import Runtime
from doorstep.settings import Settings
from doorstep.web.deps import (
    ApiActorDep,
    ClockDep,
    JSONBody,
    MerchantDep,
    OwnTransactionsMerchantDep,
    RuntimeDep,
    SessionDep,
    SettingsDep,
)
from doorstep.web.idempotency import KEY_IN_FLIGHT, KEY_REUSED, IdempotencyDep, respond
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


def _tz(merchant: Merchant) -> ZoneInfo:
    return ZoneInfo(merchant.timezone)


def _create(
    runtime: Runtime,
    clock: Clock,
    idem: IdempotentRequest | None,
    collection: str,
    make: Callable[[Session], BaseModel],
) -> Response:
    """201 with what ``make`` created (serialised as its ``response_model`` would be) and its
    ``Location``, at most once per ``Idempotency-Key``: a retry replays the first answer."""

    def action(session: Session) -> Answer:
        return Answer(201, make(session).model_dump(mode="json", by_alias=True))

    answer = idempotency.run(runtime.sessions, clock, idem, action)
    location = f"{router.prefix}/{collection}/{answer.body['id']}" if answer.success else None
    return respond(answer, location=location)


# --- Depots ---------------------------------------------------------------------------------


@router.post(
    "/depots",
    status_code=201,
    response_model=DepotOut,
    responses=_idempotent(WRITE),
    summary="Create a depot",
)
def create_depot(
    body: DepotIn,
    merchant: OwnTransactionsMerchantDep,
    runtime: RuntimeDep,
    clock: ClockDep,
    idem: IdempotencyDep,
) -> Response:
    geocoder = geocoder_from_settings(runtime.settings)

    def make(session: Session) -> DepotOut:
        depot = resources.create_depot(session, clock, merchant.id, body, geocoder=geocoder)
        return depot_out(depot, _tz(merchant))

    return _create(runtime, clock, idem, "depots", make)


@router.get("/depots", response_model=Page[DepotOut], responses=READ, summary="List depots")
def list_depots(
    merchant: MerchantDep, session: SessionDep, limit: Limit = 100, after: After = None
) -> Page[DepotOut]:
    rows, cursor = resources.list_depots(session, merchant.id, after=after, limit=limit)
    return Page[DepotOut](items=[depot_out(r, _tz(merchant)) for r in rows], next_cursor=cursor)


@router.get("/depots/{depot_id}", response_model=DepotOut, responses=READ, summary="A depot")
def get_depot(depot_id: str, merchant: MerchantDep, session: SessionDep) -> DepotOut:
    return depot_out(resources.access_depot(session, merchant.id, depot_id), _tz(merchant))


@router.patch(
    "/depots/{depot_id}", response_model=DepotOut, responses=WRITE, summary="Change a depot"
)
def update_depot(
    depot_id: str,
    body: DepotPatch,
    merchant: MerchantDep,
    session: SessionDep,
    settings: SettingsDep,
) -> DepotOut:
    depot = resources.update_depot(
        session, merchant.id, depot_id, body, geocoder=geocoder_from_settings(settings)
    )
    return depot_out(depot, _tz(merchant))


@router.delete("/depots/{depot_id}", status_code=204, responses=DELETE, summary="Delete a depot")
def delete_depot(depot_id: str, merchant: MerchantDep, session: SessionDep) -> Response:
    resources.delete_depot(session, merchant.id, depot_id)
    return Response(status_code=204)


# --- Vehicles -------------------------------------------------------------------------------


@router.post(
    "/vehicles",
    status_code=201,
    response_model=VehicleOut,
    responses=_idempotent(WRITE),
    summary="Create a vehicle",
)
def create_vehicle(
    body: VehicleIn,
    merchant: OwnTransactionsMerchantDep,
    runtime: RuntimeDep,
    clock: ClockDep,
    idem: IdempotencyDep,
) -> Response:
    def make(session: Session) -> VehicleOut:
        vehicle = resources.create_vehicle(session, clock, merchant.id, body)
        return vehicle_out(vehicle, _tz(merchant))

    return _create(runtime, clock, idem, "vehicles", make)


@router.get("/vehicles", response_model=Page[VehicleOut], responses=READ, summary="List vehicles")
def list_vehicles(
    merchant: MerchantDep, session: SessionDep, limit: Limit = 100, after: After = None
) -> Page[VehicleOut]:
    rows, cursor = resources.list_vehicles(session, merchant.id, after=after, limit=limit)
    return Page[VehicleOut](items=[vehicle_out(r, _tz(merchant)) for r in rows], next_cursor=cursor)


@router.get(
    "/vehicles/{vehicle_id}", response_model=VehicleOut, responses=READ, summary="A vehicle"
)
def get_vehicle(vehicle_id: str, merchant: MerchantDep, session: SessionDep) -> VehicleOut:
    return vehicle_out(resources.access_vehicle(session, merchant.id, vehicle_id), _tz(merchant))


@router.patch(
    "/vehicles/{vehicle_id}",
    response_model=VehicleOut,
    responses=WRITE,
    summary="Change or deactivate a vehicle",
)
def update_vehicle(
    vehicle_id: str, body: VehiclePatch, merchant: MerchantDep, session: SessionDep
) -> VehicleOut:
    vehicle = resources.update_vehicle(session, merchant.id, vehicle_id, body)
    return vehicle_out(vehicle, _tz(merchant))


@router.delete(
    "/vehicles/{vehicle_id}", status_code=204, responses=DELETE, summary="Delete a vehicle"
)
def delete_vehicle(vehicle_id: str, merchant: MerchantDep, session: SessionDep) -> Response:
    resources.delete_vehicle(session, merchant.id, vehicle_id)
    return Response(status_code=204)


# --- Drivers --------------------------------------------------------------------------------


@router.post(
    "/drivers",
    status_code=201,
    response_model=DriverOut,
    responses=_idempotent({**WRITE, **_problems(e409="device_id already registered")}),
    summary="Create a driver",
)
def create_driver(
    body: DriverIn,
    merchant: OwnTransactionsMerchantDep,
    runtime: RuntimeDep,
    clock: ClockDep,
    idem: IdempotencyDep,
) -> Response:
    def make(session: Session) -> DriverOut:
        driver = resources.create_driver(session, clock, merchant.id, body)
        return driver_out(driver, _tz(merchant))

    return _create(runtime, clock, idem, "drivers", make)


@router.get("/drivers", response_model=Page[DriverOut], responses=READ, summary="List drivers")
def list_drivers(
    merchant: MerchantDep, session: SessionDep, limit: Limit = 100, after: After = None
) -> Page[DriverOut]:
    rows, cursor = resources.list_drivers(session, merchant.id, after=after, limit=limit)
    return Page[DriverOut](items=[driver_out(r, _tz(merchant)) for r in rows], next_cursor=cursor)


@router.get("/drivers/{driver_id}", response_model=DriverOut, responses=READ, summary="A driver")
def get_driver(driver_id: str, merchant: MerchantDep, session: SessionDep) -> DriverOut:
    return driver_out(resources.access_driver(session, merchant.id, driver_id), _tz(merchant))


@router.patch(
    "/drivers/{driver_id}",
    response_model=DriverOut,
    responses={**WRITE, **_problems(e409="device_id already registered")},
    summary="Change or deactivate a driver",
)
def update_driver(
    driver_id: str, body: DriverPatch, merchant: MerchantDep, session: SessionDep
) -> DriverOut:
    return driver_out(resources.update_driver(session, merchant.id, driver_id, body), _tz(merchant))


@router.delete("/drivers/{driver_id}", status_code=204, responses=DELETE, summary="Delete a driver")
def delete_driver(driver_id: str, merchant: MerchantDep, session: SessionDep) -> Response:
    resources.delete_driver(session, merchant.id, driver_id)
    return Response(status_code=204)


@router.get(
    "/drivers/{driver_id}/route",
    response_model=DriverRouteOut,
    responses=READ,
    summary="A driver's published routes of a day, stops in order",
)
def driver_route(
    driver_id: str,
    merchant: MerchantDep,
    session: SessionDep,
    clock: ClockDep,
    day: Annotated[date | None, Query(alias="date", description="Default: today")] = None,
) -> DriverRouteOut:
    result = publishing.driver_routes(session, clock, merchant.id, driver_id, day)
    return DriverRouteOut(
        driver=PersonRef(id=result.driver.id, name=result.driver.name),
        date=result.day,
        routes=[route_out(route, view) for route, view in result.routes],
    )


# --- Shifts ---------------------------------------------------------------------------------


@router.post(
    "/shifts",
    status_code=201,
    response_model=ShiftOut,
    responses=_idempotent(
        {**WRITE, **_problems(e409="The driver or vehicle has an overlapping shift")}
    ),
    summary="Create a shift",
)
def create_shift(
    body: ShiftIn,
    merchant: OwnTransactionsMerchantDep,
    runtime: RuntimeDep,
    clock: ClockDep,
    idem: IdempotencyDep,
) -> Response:
    def make(session: Session) -> ShiftOut:
        return shift_out(resources.create_shift(session, clock, merchant.id, body), _tz(merchant))

    return _create(runtime, clock, idem, "shifts", make)


@router.get("/shifts", response_model=Page[ShiftOut], responses=READ, summary="List shifts")
def list_shifts(
    merchant: MerchantDep,
    session: SessionDep,
    day: Annotated[date | None, Query(alias="date", description="Starting that day")] = None,
    depot_id: str | None = None,
    driver_id: str | None = None,
    limit: Limit = 100,
    after: After = None,
) -> Page[ShiftOut]:
    rows, cursor = resources.list_shifts(
        session,
        merchant.id,
        day=day,
        depot_id=depot_id,
        driver_id=driver_id,
        after=after,
        limit=limit,
    )
    return Page[ShiftOut](items=[shift_out(r, _tz(merchant)) for r in rows], next_cursor=cursor)


@router.get("/shifts/{shift_id}", response_model=ShiftOut, responses=READ, summary="A shift")
def get_shift(shift_id: str, merchant: MerchantDep, session: SessionDep) -> ShiftOut:
    return shift_out(resources.access_shift(session, merchant.id, shift_id), _tz(merchant))


@router.patch(
    "/shifts/{shift_id}",
    response_model=ShiftOut,
    responses={**WRITE, **_problems(e409="The driver or vehicle has an overlapping shift")},
    summary="Change a shift (or set its status, e.g. dropped)",
)
def update_shift(
    shift_id: str, body: ShiftPatch, merchant: MerchantDep, session: SessionDep
) -> ShiftOut:
    return shift_out(resources.update_shift(session, merchant.id, shift_id, body), _tz(merchant))


@router.delete("/shifts/{shift_id}", status_code=204, responses=DELETE, summary="Delete a shift")
def delete_shift(shift_id: str, merchant: MerchantDep, session: SessionDep) -> Response:
    resources.delete_shift(session, merchant.id, shift_id)
    return Response(status_code=204)


# --- Plans ----------------------------------------------------------------------------------


@router.post(
    "/plans",
    status_code=201,
    response_model=PlanOut,
    responses=_idempotent(WRITE),
    summary="Plan a depot's day (a draft; publish it to dispatch)",
)
def create_plan(
    body: PlanCreate,
    merchant: OwnTransactionsMerchantDep,
    runtime: RuntimeDep,
    idem: IdempotencyDep,
) -> Response:
    def action(store: StoreAnswer) -> Answer:
        return _created_plan(
            store,
            lambda on_saved: planning.create_plan(
                runtime.sessions,
                runtime.clock,
                runtime.settings,
                merchant_id=merchant.id,
                depot_id=body.depot_id,
                day=body.date,
                time_limit_s=body.time_limit_s,
                seed=body.seed,
                max_iterations=body.max_iterations,
                on_saved=on_saved,
            ),
        )

    lease = _planning_lease(body.time_limit_s, runtime.settings)
    return respond(
        idempotency.run_with_own_transactions(
            runtime.sessions, runtime.clock, idem, action, lease=lease
        )
    )


@router.get(
    "/plans", response_model=list[PlanSummaryOut], responses=READ, summary="Plans, newest first"
)
def list_plans(
    merchant: MerchantDep,
    session: SessionDep,
    day: Annotated[date | None, Query(alias="date")] = None,
    depot_id: str | None = None,
    limit: Limit = 100,
) -> list[PlanSummaryOut]:
    found = views.list_plans(session, merchant.id, day=day, depot_id=depot_id, limit=limit)
    return [plan_summary_out(v) for v in found]


@router.get(
    "/plans/{plan_id}",
    response_model=PlanOut,
    responses=READ,
    summary="A plan with its routes, stops and unassigned orders",
)
def get_plan(plan_id: str, merchant: MerchantDep, session: SessionDep) -> PlanOut:
    return plan_out(views.load_plan_view(session, merchant.id, plan_id))


@router.post(
    "/plans/{plan_id}/publish",
    response_model=PlanOut,
    responses=_idempotent({**READ, **_problems(e409="Not a draft, or its orders changed")}),
    summary="Publish a draft: schedule its orders, supersede the previous plan",
)
def publish_plan(
    plan_id: str,
    merchant: OwnTransactionsMerchantDep,
    runtime: RuntimeDep,
    clock: ClockDep,
    actor: ApiActorDep,
    idem: IdempotencyDep,
) -> Response:
    def action(session: Session) -> Answer:
        view = publishing.publish_plan(session, clock, merchant.id, plan_id, actor=actor)
        return Answer(200, plan_out(view).model_dump(mode="json"))

    return respond(idempotency.run(runtime.sessions, clock, idem, action))


@router.post(
    "/plans/{plan_id}/replan",
    status_code=201,
    response_model=PlanOut,
    responses=_idempotent({**WRITE, **_problems(e409="Only the published plan can be re-planned")}),
    summary="Re-plan a published plan from where things stand now (a new draft)",
)
def replan(
    plan_id: str,
    merchant: OwnTransactionsMerchantDep,
    runtime: RuntimeDep,
    idem: IdempotencyDep,
    body: ReplanIn | None = None,
) -> Response:
    body = body or ReplanIn()

    def action(store: StoreAnswer) -> Answer:
        return _created_plan(
            store,
            lambda on_saved: replanning.replan(
                runtime.sessions,
                runtime.clock,
                runtime.settings,
                merchant_id=merchant.id,
                plan_id=plan_id,
                dropped_shift_ids=body.dropped_shift_ids,
                time_limit_s=body.time_limit_s,
                seed=body.seed,
                max_iterations=body.max_iterations,
                on_saved=on_saved,
            ),
        )

    lease = _planning_lease(body.time_limit_s, runtime.settings)
    return respond(
        idempotency.run_with_own_transactions(
            runtime.sessions, runtime.clock, idem, action, lease=lease
        )
    )


@router.post(
    "/plans/{plan_id}/moves",
    response_model=PlanOut,
    responses=_idempotent(
        {**WRITE, **_problems(e409="The stop is under way, or the plan is over")}
    ),
    summary="Move a stop by hand; the routes it touches are recomputed",
)
def move_stop(
    plan_id: str,
    body: MoveIn,
    merchant: OwnTransactionsMerchantDep,
    runtime: RuntimeDep,
    clock: ClockDep,
    settings: SettingsDep,
    actor: ApiActorDep,
    idem: IdempotencyDep,
) -> Response:
    def action(session: Session) -> Answer:
        view = moves.move_stop(
            session,
            clock,
            settings,
            merchant.id,
            plan_id,
            order_id=body.order_id,
            to_route_id=body.to_route_id,
            position=body.position,
            actor=actor,
        )
        return Answer(200, plan_out(view).model_dump(mode="json"))

    return respond(idempotency.run(runtime.sessions, clock, idem, action))
