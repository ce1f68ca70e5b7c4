"""The driver app at ``/driver``: a mobile-first page with today's route, and the actions the
driving API offers (start, arrive, complete with proof, fail), for a driver signed in with a
one-time link or code (:mod:`doorstep.domain.dispatch.signin`).

The session is the app's signed cookie, holding one driver's id (``driver_id``); a
deactivated driver is signed out on their next request. Actions are ``fetch`` calls from
``static/driver/app.js`` with the session's CSRF token in ``X-CSRF-Token`` and an
``Idempotency-Key`` per action, queued in the browser while the network is down. The service
worker (``/driver/sw.js``, scope ``/driver``) keeps the app shell for offline starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Header, Request, UploadFile
from fastapi.responses import FileResponse, RedirectResponse, Response
from pydantic import AwareDatetime

from doorstep.domain.accounts.users import TooManyAttempts
from doorstep.domain.dispatch import execution, signin
from doorstep.domain.dispatch.execution import FailureIn, Position, ProofIn
from doorstep.domain.errors import Actor, Forbidden, Unauthorized
from doorstep.domain.idempotency import IdempotentRequest
from doorstep.domain.orders.status import Reason
from doorstep.web.api.driving import (
    form_idempotent_request,
    read_upload,
    run_start,
    run_stop_action,
)
from doorstep.web.csrf import csrf_ok, rotate_csrf_token
from doorstep.web.deps import ClockDep, RuntimeDep, SessionDep, SettingsDep
from doorstep.web.pages.driver_view import SignedInDriver, failure_reasons, load_signed_in, today
from doorstep.web.templating import STATIC_DIR, render

router = APIRouter(prefix="/driver", include_in_schema=False)

SESSION_DRIVER = "driver_id"
APP_PATH = "/driver"
LOGIN_PATH = "/driver/login"
FORM_EXPIRED = "The form expired. Please try again."
BAD_CODE = "That code is not valid. Check it, or ask your dispatcher for a new one."


def code_throttle(request: Request) -> signin.CodeThrottle:
    throttle: signin.CodeThrottle = request.app.state.driver_code_throttle
    return throttle


def _client(request: Request) -> str:
    return f"client:{request.client.host if request.client else 'unknown'}"


def current_driver(request: Request, runtime: RuntimeDep) -> SignedInDriver | None:
    """The signed-in driver, or None (and the session's driver forgotten if no longer valid)."""
    driver_id = request.session.get(SESSION_DRIVER)
    if not isinstance(driver_id, str):
        return None
    with runtime.read_sessions() as session:
        me = load_signed_in(session, driver_id)
    if me is None:
        request.session.pop(SESSION_DRIVER, None)
    return me


MaybeDriver = Annotated[SignedInDriver | None, Depends(current_driver)]


def acting_driver(
    request: Request,
    me: MaybeDriver,
    csrf: Annotated[str | None, Header(alias="X-CSRF-Token")] = None,
) -> SignedInDriver:
    """The driver behind an action: signed in (else 401) and with the page's CSRF token."""
    if me is None:
        raise Unauthorized("sign in to the driver app again")
    if not csrf_ok(request, csrf):
        raise Forbidden("the page is out of date; reload it")
    return me


ActingDriver = Annotated[SignedInDriver, Depends(acting_driver)]


async def _idem(
    request: Request,
    me: ActingDriver,
    key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> IdempotentRequest | None:
    return await form_idempotent_request(request, me.merchant_id, key)


DriverIdem = Annotated[IdempotentRequest | None, Depends(_idem)]
Lat = Annotated[float | None, Form(ge=-90, le=90)]
Lon = Annotated[float | None, Form(ge=-180, le=180)]
OccurredAt = Annotated[AwareDatetime | None, Form()]


def _actor(me: SignedInDriver) -> Actor:
    return Actor("driver", me.id)


def _sign_in(request: Request, driver_id: str) -> RedirectResponse:
    """Bind this browser to one driver (whatever it held before) and open the app."""
    request.session[SESSION_DRIVER] = driver_id
    rotate_csrf_token(request)
    return RedirectResponse(APP_PATH, status_code=303)


def _login_page(
    request: Request, *, error: str | None = None, status_code: int = 200, **headers: str
) -> Response:
    return render(
        request,
        "driver/login.html",
        {"error": error},
        status_code=status_code,
        headers=headers or None,
    )


# --- pages ----------------------------------------------------------------------------------


@router.get("", name="driver_app")
def app_page(request: Request, me: MaybeDriver, runtime: RuntimeDep, clock: ClockDep) -> Response:
    """Today's route, or the sign-in form."""
    if me is None:
        return _login_page(request)
    with runtime.read_sessions() as session:
        day_label, routes = today(session, clock, me)
    return render(
        request,
        "driver/app.html",
        {
            "me": me,
            "day_label": day_label,
            "routes": routes,
            "reasons": failure_reasons(),
            "lang": "en",
        },
    )


@router.get("/login", name="driver_login")
def login_form(request: Request, me: MaybeDriver) -> Response:
    if me is not None:
        return RedirectResponse(APP_PATH, status_code=303)
    return _login_page(request)


@router.post("/login", name="driver_login_code")
def login_with_code(
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    throttle: Annotated[signin.CodeThrottle, Depends(code_throttle)],
    code: Annotated[str, Form(max_length=32)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Sign in with the 6-digit code; wrong codes are counted and locked out (429)."""
    if not csrf_ok(request, csrf_token):
        return _login_page(request, error=FORM_EXPIRED, status_code=403)
    try:
        driver = signin.redeem_code(
            session,
            clock,
            code,
            client=_client(request),
            secret_key=settings.effective_secret_key,
            throttle=throttle,
        )
    except TooManyAttempts as exc:
        minutes = exc.retry_after_minutes
        return _login_page(
            request,
            error=f"Too many wrong codes. Try again in {minutes} minute"
            f"{'s' if minutes != 1 else ''}.",
            status_code=429,
            **{"Retry-After": str(max(1, int(exc.retry_after.total_seconds())))},
        )
    except signin.SignInFailed:
        # Answered, not raised: the request's transaction commits the counted failure.
        return _login_page(request, error=BAD_CODE, status_code=400)
    return _sign_in(request, driver.id)


@router.get("/login/{token}", name="driver_link")
def link_page(request: Request, token: str, session: SessionDep, clock: ClockDep) -> Response:
    """A sign-in link: who it signs in, and a button (a preview bot's GET uses nothing)."""
    try:
        driver = signin.peek_link(session, clock, token[:100])
    except signin.SignInFailed:
        return _login_page(
            request,
            error="This sign-in link is not valid any more. Ask your dispatcher for a new one, "
            "or type a code below.",
            status_code=400,
        )
    return render(
        request,
        "driver/link.html",
        {"first_name": driver.name.split()[0] if driver.name else "", "token": token},
    )


@router.post("/login/{token}", name="driver_link_use")
def use_link(
    request: Request,
    token: str,
    session: SessionDep,
    clock: ClockDep,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    if not csrf_ok(request, csrf_token):
        return _login_page(request, error=FORM_EXPIRED, status_code=403)
    try:
        driver = signin.redeem_link(session, clock, token[:100])
    except signin.SignInFailed:
        return _login_page(
            request,
            error="This sign-in link is not valid any more. Ask your dispatcher for a new one.",
            status_code=400,
        )
    return _sign_in(request, driver.id)


@router.post("/logout", name="driver_logout")
def logout(request: Request, csrf_token: Annotated[str, Form(max_length=200)] = "") -> Response:
    if csrf_ok(request, csrf_token):
        request.session.pop(SESSION_DRIVER, None)
        rotate_csrf_token(request)
    return RedirectResponse(LOGIN_PATH, status_code=303)


@router.get("/sw.js", name="driver_service_worker")
def service_worker() -> Response:
    """The service worker, served from ``/driver/`` so that its scope covers the app."""
    path: Path = STATIC_DIR / "driver" / "sw.js"
    return FileResponse(
        path,
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": APP_PATH},
    )


# --- actions (JSON answers, the same verbs as the API) --------------------------------------


@router.post("/routes/{route_id}/start")
def start(
    route_id: str,
    me: ActingDriver,
    idem: DriverIdem,
    runtime: RuntimeDep,
    occurred_at: OccurredAt = None,
) -> Response:
    return run_start(
        runtime,
        me.merchant_id,
        route_id,
        me.tz,
        idem,
        actor=_actor(me),
        driver_id=me.id,
        occurred_at=occurred_at,
    )


@router.post("/stops/{stop_id}/arrive")
def arrive(
    stop_id: str,
    me: ActingDriver,
    idem: DriverIdem,
    runtime: RuntimeDep,
    lat: Lat = None,
    lon: Lon = None,
    occurred_at: OccurredAt = None,
) -> Response:
    return run_stop_action(
        runtime,
        me.tz,
        idem,
        lambda s: execution.arrive(
            s,
            runtime.clock,
            me.merchant_id,
            stop_id,
            actor=_actor(me),
            driver_id=me.id,
            at=Position(lat, lon),
            occurred_at=occurred_at,
            settings=runtime.settings,
        ),
    )


@router.post("/stops/{stop_id}/complete")
def complete(
    stop_id: str,
    me: ActingDriver,
    idem: DriverIdem,
    runtime: RuntimeDep,
    settings: SettingsDep,
    photo: Annotated[UploadFile | None, File()] = None,
    signature: Annotated[UploadFile | None, File()] = None,
    received_by: Annotated[str | None, Form(max_length=200)] = None,
    pin: Annotated[str | None, Form(max_length=12)] = None,
    lat: Lat = None,
    lon: Lon = None,
    occurred_at: OccurredAt = None,
) -> Response:
    proof = ProofIn(
        photo=read_upload(photo, settings.proof_max_bytes),
        signature=read_upload(signature, settings.proof_max_bytes),
        received_by=received_by,
        pin=pin,
        at=Position(lat, lon),
        occurred_at=occurred_at,
    )
    return run_stop_action(
        runtime,
        me.tz,
        idem,
        lambda s: execution.complete_stop(
            s,
            runtime.clock,
            settings,
            me.merchant_id,
            stop_id,
            proof,
            actor=_actor(me),
            driver_id=me.id,
        ),
    )


@router.post("/stops/{stop_id}/fail")
def fail(
    stop_id: str,
    me: ActingDriver,
    idem: DriverIdem,
    runtime: RuntimeDep,
    settings: SettingsDep,
    reason: Annotated[Reason | None, Form()] = None,
    note: Annotated[str | None, Form(max_length=1000)] = None,
    photo: Annotated[UploadFile | None, File()] = None,
    lat: Lat = None,
    lon: Lon = None,
    occurred_at: OccurredAt = None,
) -> Response:
    failure = FailureIn(
        reason=reason,
        note=note,
        photo=read_upload(photo, settings.proof_max_bytes),
        at=Position(lat, lon),
        occurred_at=occurred_at,
    )
    return run_stop_action(
        runtime,
        me.tz,
        idem,
        lambda s: execution.fail_stop(
            s,
            runtime.clock,
            settings,
            me.merchant_id,
            stop_id,
            failure,
            actor=_actor(me),
            driver_id=me.id,
        ),
    )
