"""The recipient's tracking page, ``/t/{token}``: a capability link, no account.

* ``GET /t/{token}``: the page, server-rendered and complete without JavaScript; with it,
  ``static/tracking/tracking.js`` keeps it current over SSE and draws the map.
* ``GET /t/{token}/events``: Server-Sent Events. The first message is a ``snapshot`` of the
  page's texts; each event on the order or its route sends a new one (its SSE id is the
  latest event's sequence number), each position a ``position`` while the driver may be shown.
  A reconnecting browser simply gets a fresh snapshot. Every page of one link in a process
  shares one feed (``tracking_live.py``): one read per event, not one per page. Streams end after
  ``live_stream_max_s`` (the browser reconnects) or with an ``end`` message once the
  delivery is over.
* ``GET /t/{token}/calendar.ics``: the delivery window as an iCalendar event (stable UID,
  SEQUENCE = ``Order.window_sequence``).
* ``GET /t/{token}/proof.jpg``: the proof-of-delivery photo, through the capability only.
* ``POST /t/{token}/{reschedule|redirect|hold|instructions}``: the "Change delivery" forms
  (``tracking_selfservice.py``): ``303`` back to the page with a confirmation, or the page
  again with the form's errors (422, or 409 after the cut-off); 403 for a forged form.

Unknown, malformed and expired tokens all get the same 404 page, byte for byte; every ``/t/``
request counts against a per-client-IP rate limit (429 with ``Retry-After``).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import jinja2
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from icalendar import Calendar, Event
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from doorstep.db.engine import transaction
from doorstep.domain.accounts.models import Merchant
from doorstep.domain.dispatch.proof import load_proof_photo
from doorstep.domain.errors import DomainError
from doorstep.domain.notifications.mail import delivery_uid
from doorstep.domain.notifications.preferences import preferences_url
from doorstep.domain.slots.selfservice import order_for_merchant, recipient_change
from doorstep.domain.tracking.links import find_order_by_token, tracking_url
from doorstep.domain.tracking.view import TrackingView, load_tracking_view
from doorstep.live.fanout import LiveResponse, fanout_of
from doorstep.runtime import Runtime
from doorstep.settings import Settings
from doorstep.web.i18n import choose_language, from_accept_language
from doorstep.web.pages.dispatch_view import ink_for
from doorstep.web.pages.tracking_live import TrackingFeed
from doorstep.web.pages.tracking_selfservice import (
    ACTIONS,
    FORM_FIELD,
    FormErrors,
    FormRefused,
    Options,
    form_token,
    form_token_ok,
    load_options,
    origin_ok,
    parse_change,
    present_options,
    refusal,
)
from doorstep.web.pages.tracking_view import Texts, present
from doorstep.web.ratelimit import RateLimiter
from doorstep.web.templating import (
    LEAFLET_PREFIX,
    TEMPLATES_DIR,
    security_headers,
    static_url,
)

__all__ = ["ProofPhotoLoader", "install", "router"]

# (session, settings, merchant id, order id) -> (bytes, media type) or None: the driver app's
# ``load_proof_photo`` by default, on ``app.state.proof_photo_loader`` (tests may swap it).
ProofPhotoLoader = Callable[[Session, Settings, str, str], tuple[bytes, str] | None]


class RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after


def _client_key(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


async def _rate_limit(request: Request) -> None:
    """Counted on the event loop (an in-memory bucket): no pool hand-off of its own."""
    limiter: RateLimiter = request.app.state.tracking_limiter
    wait = limiter.take(_client_key(request))
    if wait:
        raise RateLimited(wait)


# A live stream whose socket takes no data for this long is closed (a dead or stuck client).
SEND_TIMEOUT_S = 30.0

router = APIRouter(prefix="/t", include_in_schema=False, dependencies=[Depends(_rate_limit)])


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        static=static_url,
        leaflet_js=f"{LEAFLET_PREFIX}/leaflet.js",
        leaflet_css=f"{LEAFLET_PREFIX}/leaflet.css",
    )
    return env


_env = _environment()


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _html(body: str, *, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return HTMLResponse(body, status_code=status, headers=headers)


def not_found(request: Request) -> Response:
    """The one answer for every token that opens nothing: same bytes whatever the reason."""
    lang = from_accept_language(request.headers.get("accept-language")) or "en"
    body = _env.get_template("tracking/not_found.html").render(lang=lang, _=Texts(lang))
    runtime = _runtime(request)
    headers = security_headers(runtime.settings.tiles_url)
    headers["Vary"] = "Accept-Language"
    return _html(body, status=404, headers=headers)


def rate_limited(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RateLimited)
    lang = from_accept_language(request.headers.get("accept-language")) or "en"
    _ = Texts(lang)
    body = _env.get_template("tracking/not_found.html").render(
        lang=lang, _=_, title=_("Too many requests"), message=_("Please wait a minute and retry.")
    )
    headers = security_headers(_runtime(request).settings.tiles_url)
    headers["Retry-After"] = str(exc.retry_after)
    return _html(body, status=429, headers=headers)


@dataclass
class Opened:
    view: TrackingView
    lang: str
    options: Options | None = None


def _open(
    runtime: Runtime,
    token: str,
    accept_language: str | None,
    *,
    options: bool = False,
    even_if_over: bool = False,
) -> Opened | None:
    """What the token opens; with ``options``, also what the recipient may change (for a
    delivery that is over only ``even_if_over``: to say why a form was refused)."""
    ttl = timedelta(hours=runtime.settings.tracking_link_ttl_hours)
    with runtime.read_sessions() as session, session.begin():
        order = find_order_by_token(session, token, now=runtime.clock.now(), ttl=ttl)
        if order is None:
            return None
        view = load_tracking_view(session, order)
        loaded = None
        if options and (view.is_active or even_if_over):
            loaded = load_options(session, runtime.clock, runtime.settings, order)
    lang = choose_language(view.recipient_locale, accept_language, view.merchant_locale)
    return Opened(view, lang, loaded)


def _sha256_source(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def _page_headers(runtime: Runtime, view: TrackingView, brand_css: str) -> dict[str, str]:
    headers = security_headers(runtime.settings.tiles_url)
    csp = headers["Content-Security-Policy"]
    csp = csp.replace("style-src 'self'", f"style-src 'self' {_sha256_source(brand_css)}")
    logo = view.branding.get("logo_url", "")
    parts = urlsplit(logo)
    if parts.scheme in ("http", "https") and parts.netloc:
        csp = csp.replace("img-src 'self'", f"img-src 'self' {parts.scheme}://{parts.netloc}")
    headers["Content-Security-Policy"] = csp
    # Same-origin (not no-referrer): the page's own form POSTs then carry its real Origin,
    # which the forms' guard checks; the token in the URL still never leaves this server.
    headers["Referrer-Policy"] = "same-origin"
    headers["Vary"] = "Accept-Language"
    return headers


def _brand_css(view: TrackingView) -> str:
    colour = view.branding.get("color") or "#1f4e79"
    return f":root{{--brand:{colour};--brand-ink:{ink_for(colour)}}}"


def _render_page(
    request: Request,
    runtime: Runtime,
    token: str,
    opened: Opened,
    *,
    status: int = 200,
    done: str | None = None,
    errors: FormErrors | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    view, lang = opened.view, opened.lang
    page = present(view, lang)
    brand_css = _brand_css(view)
    change = None
    if opened.options is not None:
        change = present_options(
            opened.options, lang, view.status, done=done, errors=errors, values=values
        )
    body = _env.get_template("tracking/page.html").render(
        lang=lang,
        _=Texts(lang),
        view=view,
        page=page,
        brand_css=brand_css,
        token=token,
        tiles_url=runtime.settings.tiles_url,
        tiles_attribution=runtime.settings.tiles_attribution,
        has_proof_photo=view.proof is not None
        and view.proof.photo
        and getattr(request.app.state, "proof_photo_loader", None) is not None,
        change=change,
        form_field=FORM_FIELD,
        form_token=form_token(request.app.state.tracking_form_secret, token),
        preferences_url=preferences_url(
            runtime.settings.base_url, runtime.settings.effective_secret_key, view.order_id
        ),
    )
    return _html(body, status=status, headers=_page_headers(runtime, view, brand_css))


@router.get("/{token}", name="tracking_page")
def tracking_page(token: str, request: Request) -> Response:
    runtime = _runtime(request)
    opened = _open(runtime, token, request.headers.get("accept-language"), options=True)
    if opened is None:
        return not_found(request)
    return _render_page(request, runtime, token, opened, done=request.query_params.get("done"))


@dataclass
class Outcome:
    kind: str  # missing|forbidden|done|refused
    status: int = 200
    errors: FormErrors | None = None


def _apply(
    runtime: Runtime,
    token: str,
    action: str,
    form: dict[str, str],
    accept_language: str | None,
    secret: str,
    same_site: bool,
) -> Outcome:
    """One recipient change in one transaction: the token first (unknown = the 404 of every
    link), then the forgery guard, then the form, then the domain's verb."""
    ttl = timedelta(hours=runtime.settings.tracking_link_ttl_hours)
    try:
        with transaction(runtime.sessions) as session:
            found = find_order_by_token(session, token, now=runtime.clock.now(), ttl=ttl)
            if found is None:
                return Outcome("missing")
            if not same_site or not form_token_ok(secret, token, form.get(FORM_FIELD)):
                return Outcome("forbidden", 403)
            order = order_for_merchant(session, found.merchant_id, found.id)
            merchant = session.get(Merchant, order.merchant_id)
            merchant_locale = merchant.locale if merchant is not None else None
            lang = choose_language(order.recipient_locale, accept_language, merchant_locale)
            try:
                change = parse_change(action, form, lang)
            except FormRefused as exc:
                return Outcome("refused", 422, exc.errors)
            try:
                recipient_change(session, runtime.clock, runtime.settings, order, change)
            except DomainError as exc:  # undo whatever the verb did before refusing
                refused = Outcome("refused", exc.status_code, refusal(action, form, exc, lang))
                raise _RolledBack(refused) from exc
    except _RolledBack as rolled_back:
        return rolled_back.outcome
    return Outcome("done", 303)


class _RolledBack(Exception):
    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.kind)
        self.outcome = outcome


@router.post("/{token}/{action}", name="tracking_change")
async def tracking_change(token: str, action: str, request: Request) -> Response:
    runtime = _runtime(request)
    if action not in ACTIONS:
        return not_found(request)
    raw = await request.form()
    form = {k: v for k, v in raw.items() if isinstance(v, str)}
    accept = request.headers.get("accept-language")
    same_site = origin_ok(request.headers, str(request.base_url), runtime.settings.base_url)
    secret: str = request.app.state.tracking_form_secret
    # The change, the page that answers it and its render: one pool call (ADR 0013).
    return await run_in_threadpool(
        _change_answer, request, runtime, token, action, form, accept, secret, same_site
    )


def _change_answer(
    request: Request,
    runtime: Runtime,
    token: str,
    action: str,
    form: dict[str, str],
    accept: str | None,
    secret: str,
    same_site: bool,
) -> Response:
    outcome = _apply(runtime, token, action, form, accept, secret, same_site)
    if outcome.kind == "missing":
        return not_found(request)
    if outcome.kind == "done":
        return RedirectResponse(f"/t/{token}?done={action}#change-result", status_code=303)
    opened = _open(runtime, token, accept, options=True, even_if_over=True)
    if opened is None:
        return not_found(request)
    if outcome.kind == "forbidden":
        _ = Texts(opened.lang)
        body = _env.get_template("tracking/not_found.html").render(
            lang=opened.lang,
            _=_,
            title=_("This form has expired"),
            message=_("Please open your tracking link again and retry."),
        )
        headers = security_headers(runtime.settings.tiles_url)
        return _html(body, status=403, headers=headers)
    values = {k: v for k, v in form.items() if k != FORM_FIELD}
    return _render_page(
        request,
        runtime,
        token,
        opened,
        status=outcome.status,
        errors=outcome.errors,
        values=values,
    )


@router.get("/{token}/calendar.ics", name="tracking_calendar")
def tracking_calendar(token: str, request: Request) -> Response:
    runtime = _runtime(request)
    opened = _open(runtime, token, request.headers.get("accept-language"))
    if opened is None or opened.view.window_start is None or opened.view.window_end is None:
        return not_found(request)
    view = opened.view
    _ = Texts(opened.lang)
    cal = Calendar()
    cal.add("prodid", "-//Doorstep//Delivery tracking//EN")
    cal.add("version", "2.0")
    cal.add("method", "PUBLISH")
    ev = Event()
    ev.add("uid", delivery_uid(view.order_id, runtime.settings.base_url))
    ev.add("sequence", view.window_sequence)
    ev.add("dtstamp", runtime.clock.now())
    ev.add("dtstart", view.window_start)
    ev.add("dtend", view.window_end)
    ev.add("summary", _("Delivery from %(merchant)s", merchant=view.merchant_name))
    ev.add("location", f"{view.street}, {view.city}")
    ev.add("url", tracking_url(runtime.settings.base_url, token))
    ev.add("transp", "TRANSPARENT")
    cal.add_component(ev)
    return Response(
        cal.to_ical(),
        media_type="text/calendar; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="delivery.ics"',
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
        },
    )


@router.get("/{token}/proof.jpg", name="tracking_proof_photo")
def tracking_proof_photo(token: str, request: Request) -> Response:
    runtime = _runtime(request)
    loader: ProofPhotoLoader | None = getattr(request.app.state, "proof_photo_loader", None)
    opened = _open(runtime, token, None)
    if opened is None or loader is None or opened.view.proof is None:
        return not_found(request)
    with runtime.read_sessions() as session, session.begin():
        found = loader(session, runtime.settings, opened.view.merchant_id, opened.view.order_id)
    if found is None:
        return not_found(request)
    photo, media_type = found
    return Response(
        photo,
        media_type=media_type,
        headers={"Cache-Control": "private, no-store", "Referrer-Policy": "no-referrer"},
    )


def _view(runtime: Runtime, token: str) -> TrackingView | None:
    """What ``token`` opens now (``None``: unknown or expired), for the live stream."""
    opened = _open(runtime, token, None)
    return opened.view if opened is not None else None


@router.get("/{token}/events", name="tracking_events")
async def tracking_events(token: str, request: Request) -> Response:
    """The page's live stream: a mailbox on the link's shared feed (``tracking_live.py``)."""
    runtime = _runtime(request)
    accept = request.headers.get("accept-language")
    fanout = fanout_of(request.app.state)

    def make() -> TrackingFeed:
        return TrackingFeed(runtime.live, partial(_view, runtime, token))

    joined = await fanout.join(token, make, accept)
    if joined is None:
        return not_found(request)
    feed, mailbox = joined

    async def stream() -> AsyncIterator[bytes]:
        try:
            async for chunk in mailbox.stream(runtime.settings.live_stream_max_s):
                yield chunk
        finally:
            fanout.leave(token, feed, mailbox)

    return LiveResponse(
        stream(),
        ping=runtime.settings.live_ping_s,
        send_timeout=SEND_TIMEOUT_S,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.get("/{rest:path}", name="tracking_not_found")
def tracking_anything_else(rest: str, request: Request) -> Response:
    """Any other path under ``/t/`` answers like an unknown token."""
    return not_found(request)


def install(app: Any, runtime: Runtime) -> None:
    """Serve the tracking pages from ``app`` with their rate limiter."""
    app.state.tracking_limiter = RateLimiter(runtime.settings.tracking_rate_limit_per_minute)
    app.state.tracking_form_secret = runtime.settings.effective_secret_key
    if not hasattr(app.state, "proof_photo_loader"):
        app.state.proof_photo_loader = load_proof_photo
    app.include_router(router)
    app.add_exception_handler(RateLimited, rate_limited)
