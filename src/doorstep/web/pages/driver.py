"""The driver app at ``/driver``: a mobile-first page with today's route, and the actions the
driving API offers (start, arrive, complete with proof, fail), for a driver signed in with a
one-time link or code (:mod:`doorstep.domain.dispatch.signin`).

The session is the app's signed cookie, holding one driver's id (``driver_id``); a
deactivated driver is signed out on their next request. Actions are ``fetch`` calls from
``static/driver/app.js`` with the session's CSRF token in ``X-CSRF-Token`` and an
``Idempotency-Key`` per action, queued in the browser while the network is down. The service
worker (``/driver/sw.js``, scope ``/driver``) keeps the app shell for offline starts.

Every page is in the driver's language (English, French, Finnish; :func:`_language`): the
switch in the header posts to ``/driver/language``, kept in the session. The app polls
``/driver/state`` and reloads when a recipient or dispatcher changed the day.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Header, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from pydantic import AwareDatetime
from sqlalchemy.orm import Session

from doorstep.db.engine import transaction
from doorstep.domain import idempotency
from doorstep.domain.accounts.users import TooManyAttempts
from doorstep.domain.dispatch import execution, signin
from doorstep.domain.dispatch.execution import Position
from doorstep.domain.errors import Actor, Forbidden, Unauthorized
from doorstep.domain.idempotency import IdempotentRequest
from doorstep.domain.orders.status import Reason
from doorstep.runtime import Runtime
from doorstep.web.api.driving import (
    failure_form,
    form_fingerprint,
    proof_form,
    run_start,
    run_stop_action,
)
from doorstep.web.calls import PendingKey
from doorstep.web.csrf import csrf_ok, rotate_csrf_token
from doorstep.web.deps import ClockDep, RuntimeDep, SettingsDep
from doorstep.web.i18n import N_
from doorstep.web.pages.driver_view import (
    SESSION_LANGUAGE,
    SignedInDriver,
    driver_language,
    failure_reasons,
    js_texts,
    language_of,
    load_signed_in,
    state_stamp,
    today,
)
from doorstep.web.pages.tracking_view import Texts
from doorstep.web.templating import STATIC_DIR, render

router = APIRouter(prefix="/driver", include_in_schema=False)

SESSION_DRIVER = "driver_id"
APP_PATH = "/driver"
LOGIN_PATH = "/driver/login"
FORM_EXPIRED = N_("The form expired. Please try again.")
BAD_CODE = N_("That code is not valid. Check it, or ask your dispatcher for a new one.")
LINK_SPENT = N_(
    "This sign-in link is not valid any more. Ask your dispatcher for a new one, or type a "
    "code below."
)
LINK_USED = N_("This sign-in link is not valid any more. Ask your dispatcher for a new one.")
LANGUAGES = (("en", "English"), ("fr", "Français"), ("fi", "Suomi"))


def _language(request: Request, me: SignedInDriver | None = None) -> str:
    """The driver's choice (the switch), the browser's language, the merchant's, English."""
    chosen = request.session.get(SESSION_LANGUAGE)
    return driver_language(
        chosen if isinstance(chosen, str) else None,
        request.headers.get("accept-language"),
        me.merchant_locale if me is not None else None,
    )


def _page(
    request: Request, name: str, context: dict[str, object], lang: str, **kw: Any
) -> Response:
    """Render a driver page in ``lang`` (the switch, the ``_`` of the templates)."""
    headers = dict(kw.pop("headers", None) or {})
    headers["Vary"] = "Accept-Language, Cookie"
    full = {"lang": lang, "_": Texts(lang), "languages": LANGUAGES, **context}
    return render(request, name, full, headers=headers, **kw)


async def code_throttle(request: Request) -> signin.CodeThrottle:
    throttle: signin.CodeThrottle = request.app.state.driver_code_throttle
    return throttle


def _client(request: Request) -> str:
    return f"client:{request.client.host if request.client else 'unknown'}"


# One pool call per request (ADR 0013, as ``web/calls.py`` for the API and ``pages/calls.py``
# for the console): the dependencies below are ``async`` and read only the cookie and headers;
# each handler is a ``def`` that checks the driver against the database, does its work (and
# commits) and renders, in the one pool thread FastAPI runs it in.


@dataclass(frozen=True)
class DriverCall:
    """The driver a request's cookie names, checked against the database in the handler."""

    request: Request
    runtime: Runtime
    driver_id: str | None

    def signed_in(self, session: Session) -> SignedInDriver | None:
        """The signed-in driver, or None (and the cookie's driver forgotten if no longer
        valid: deactivated or deleted)."""
        if self.driver_id is None:
            return None
        me = load_signed_in(session, self.driver_id)
        if me is None:
            self.request.session.pop(SESSION_DRIVER, None)
        return me

    @contextmanager
    def reading(self) -> Iterator[tuple[Session, SignedInDriver | None]]:
        """A read-only transaction and the signed-in driver (or None)."""
        with transaction(self.runtime.read_sessions) as session:
            yield session, self.signed_in(session)


async def driver_call(request: Request, runtime: RuntimeDep) -> DriverCall:
    driver_id = request.session.get(SESSION_DRIVER)
    return DriverCall(request, runtime, driver_id if isinstance(driver_id, str) else None)


DriverCallDep = Annotated[DriverCall, Depends(driver_call)]


@dataclass(frozen=True)
class DriverAction:
    """An action's caller before the database is asked: a driver's cookie and the page's CSRF
    token (else 401 / 403 at once), and its ``Idempotency-Key`` with the form's fingerprint."""

    call: DriverCall
    key: PendingKey | None

    def acting(self) -> tuple[SignedInDriver, IdempotentRequest | None]:
        """The driver, still active (else 401), and the key under their merchant."""
        with transaction(self.call.runtime.read_sessions) as session:
            me = self.call.signed_in(session)
        if me is None:
            raise Unauthorized("sign in to the driver app again")
        return me, self.key.of(me.merchant_id) if self.key is not None else None


async def driver_action(
    request: Request,
    call: DriverCallDep,
    csrf: Annotated[str | None, Header(alias="X-CSRF-Token")] = None,
    key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> DriverAction:
    if call.driver_id is None:
        raise Unauthorized("sign in to the driver app again")
    if not csrf_ok(request, csrf):
        raise Forbidden("the page is out of date; reload it")
    pending = None
    if key is not None:
        pending = PendingKey(
            key=idempotency.parse_key(key),
            method=request.method,
            path=request.url.path,
            fingerprint=await form_fingerprint(request),
        )
    return DriverAction(call, pending)


DriverActionDep = Annotated[DriverAction, Depends(driver_action)]
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
    lang = _language(request)
    return _page(
        request,
        "driver/login.html",
        {"error": Texts(lang)(error) if error else None},
        lang,
        status_code=status_code,
        headers=headers or None,
    )


# --- pages ----------------------------------------------------------------------------------


@router.get("", name="driver_app")
def app_page(request: Request, driver: DriverCallDep, clock: ClockDep) -> Response:
    """Today's route, or the sign-in form."""
    with driver.reading() as (session, me):
        if me is None:
            return _login_page(request)
        lang = _language(request, me)
        day_label, routes = today(session, clock, me, lang)
        stamp = state_stamp(session, clock, me)
    return _page(
        request,
        "driver/app.html",
        {
            "me": me,
            "day_label": day_label,
            "routes": routes,
            "reasons": failure_reasons(lang),
            "js_texts": js_texts(lang),
            "stamp": stamp,
        },
        lang,
    )


@router.get("/state", name="driver_state")
def state(driver: DriverCallDep, clock: ClockDep) -> Response:
    """The fingerprint of what others changed on the driver's day (the page polls it)."""
    with driver.reading() as (session, me):
        if me is None:
            return JSONResponse({"detail": "signed out"}, status_code=401)
        stamp = state_stamp(session, clock, me)
    return JSONResponse({"stamp": stamp}, headers={"Cache-Control": "no-store"})


@router.post("/language", name="driver_language")
def set_language(
    request: Request,
    lang: Annotated[str, Form(max_length=16)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    back: Annotated[str, Form(max_length=200)] = APP_PATH,
) -> Response:
    """The language switch: kept in the session, then back to the page it was on."""
    chosen = language_of(lang)
    if csrf_ok(request, csrf_token) and chosen is not None:
        request.session[SESSION_LANGUAGE] = chosen
    # Only back to a page of the app (never elsewhere: an open redirect).
    same_app = back == APP_PATH or back.startswith(APP_PATH + "/")
    target = back if same_app and "//" not in back and "\\" not in back else APP_PATH
    return RedirectResponse(target, status_code=303)


@router.get("/login", name="driver_login")
def login_form(request: Request, driver: DriverCallDep) -> Response:
    with driver.reading() as (_, me):
        if me is not None:
            return RedirectResponse(APP_PATH, status_code=303)
    return _login_page(request)


@router.post("/login", name="driver_login_code")
def login_with_code(
    request: Request,
    runtime: RuntimeDep,
    throttle: Annotated[signin.CodeThrottle, Depends(code_throttle)],
    code: Annotated[str, Form(max_length=32)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Sign in with the 6-digit code; wrong codes are counted and locked out (429)."""
    if not csrf_ok(request, csrf_token):
        return _login_page(request, error=FORM_EXPIRED, status_code=403)
    with transaction(runtime.sessions) as session:  # committed, a counted failure too
        return _redeem_code(request, session, runtime, throttle, code)


def _redeem_code(
    request: Request,
    session: Session,
    runtime: Runtime,
    throttle: signin.CodeThrottle,
    code: str,
) -> Response:
    clock, settings = runtime.clock, runtime.settings
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
        too_many = Texts(_language(request)).n(
            "Too many wrong codes. Try again in %(count)s minute.",
            "Too many wrong codes. Try again in %(count)s minutes.",
            minutes,
        )
        return _login_page(
            request,
            error=too_many,
            status_code=429,
            **{"Retry-After": str(max(1, int(exc.retry_after.total_seconds())))},
        )
    except signin.SignInFailed:
        # Answered, not raised: the request's transaction commits the counted failure.
        return _login_page(request, error=BAD_CODE, status_code=400)
    return _sign_in(request, driver.id)


@router.get("/login/{token}", name="driver_link")
def link_page(request: Request, token: str, runtime: RuntimeDep) -> Response:
    """A sign-in link: who it signs in, and a button (a preview bot's GET uses nothing)."""
    try:
        with transaction(runtime.read_sessions) as session:
            driver = signin.peek_link(session, runtime.clock, token[:100])
    except signin.SignInFailed:
        return _login_page(request, error=LINK_SPENT, status_code=400)
    return _page(
        request,
        "driver/link.html",
        {"first_name": driver.name.split()[0] if driver.name else "", "token": token},
        _language(request),
    )


@router.post("/login/{token}", name="driver_link_use")
def use_link(
    request: Request,
    token: str,
    runtime: RuntimeDep,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    if not csrf_ok(request, csrf_token):
        return _login_page(request, error=FORM_EXPIRED, status_code=403)
    with transaction(runtime.sessions) as session:
        try:
            driver = signin.redeem_link(session, runtime.clock, token[:100])
        except signin.SignInFailed:  # answered, and whatever it recorded committed
            return _login_page(request, error=LINK_USED, status_code=400)
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
    action: DriverActionDep,
    runtime: RuntimeDep,
    occurred_at: OccurredAt = None,
) -> Response:
    me, idem = action.acting()
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
    action: DriverActionDep,
    runtime: RuntimeDep,
    lat: Lat = None,
    lon: Lon = None,
    occurred_at: OccurredAt = None,
) -> Response:
    me, idem = action.acting()
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
    action: DriverActionDep,
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
    me, idem = action.acting()
    proof = proof_form(
        settings,
        photo=photo,
        signature=signature,
        received_by=received_by,
        pin=pin,
        lat=lat,
        lon=lon,
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
    action: DriverActionDep,
    runtime: RuntimeDep,
    settings: SettingsDep,
    reason: Annotated[Reason | None, Form()] = None,
    note: Annotated[str | None, Form(max_length=1000)] = None,
    photo: Annotated[UploadFile | None, File()] = None,
    lat: Lat = None,
    lon: Lon = None,
    occurred_at: OccurredAt = None,
) -> Response:
    me, idem = action.acting()
    failure = failure_form(
        settings, reason=reason, note=note, photo=photo, lat=lat, lon=lon, occurred_at=occurred_at
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


# --- anything else under /driver: the app's own page, in the driver's language --------------


def _is_driver_page(request: Request) -> bool:
    """A browser opening an address of the driver app (its own fetches ask for JSON)."""
    path = request.url.path
    accept = request.headers.get("accept", "")
    return (
        (path == APP_PATH or path.startswith(APP_PATH + "/"))
        and "text/html" in accept
        and "application/json" not in accept
    )


def server_error_page(request: Request) -> Response | None:
    """An unexpected error under /driver, for a driver's browser: the app's error page in their
    language (their switch, else the browser's; not the merchant's, which needs the database
    that may be what failed), instead of problem JSON. None for anything else."""
    if not _is_driver_page(request):
        return None
    session = request.scope.get("session")
    chosen = session.get(SESSION_LANGUAGE) if isinstance(session, dict) else None
    lang = driver_language(
        chosen if isinstance(chosen, str) else None, request.headers.get("accept-language"), None
    )
    _ = Texts(lang)
    context: dict[str, object] = {
        "title": _("Something went wrong"),
        "message": _(
            "Doorstep could not show this page. Go back to today's route and try again in a moment."
        ),
    }
    if session is None:  # no session to hold a language switch's token
        context["csrf_token"] = ""
    return _page(request, "driver/error.html", context, lang, status_code=500)


@router.get("/{rest:path}", name="driver_not_found")
def not_found(request: Request, driver: DriverCallDep, rest: str) -> Response:
    """A driver who opens a wrong address under /driver gets a page (not problem JSON) in
    their language, leading back to the route."""
    del rest
    with driver.reading() as (_, me):
        lang = _language(request, me)
    _ = Texts(lang)
    return _page(
        request,
        "driver/error.html",
        {
            "title": _("Page not found"),
            "message": _("This page does not exist. Your stops are on today's route."),
        },
        lang,
        status_code=404,
    )
