"""The recipient's message preferences (``/p/{token}``) and RFC 8058 one-click unsubscribe
(``/u/{token}``), both reached from the link in every message. A wrong token is a 404 that says
nothing more. Each request is one pool call (:func:`~doorstep.web.pages.calls.session_page`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import PlainTextResponse, Response
from sqlalchemy.orm import Session

from doorstep.domain.accounts.models import Merchant
from doorstep.domain.errors import DomainError, NotFound
from doorstep.domain.notifications.outbox import preference_for
from doorstep.domain.notifications.preferences import opt_out, order_for_token, set_preferences
from doorstep.domain.orders.models import Order
from doorstep.settings import Settings
from doorstep.web.csrf import csrf_ok
from doorstep.web.deps import ClockDep, SettingsDep
from doorstep.web.pages.calls import session_page
from doorstep.web.templating import render

router = APIRouter(include_in_schema=False)

CHANNELS = [("email", "E-mail"), ("sms", "Text message (SMS)"), ("chat", "Chat")]
LOCALES = [("", "As the shop chooses"), ("en", "English"), ("fr", "Français"), ("fi", "Suomi")]


def _order(session: Session, settings: Settings, token: str) -> Order:
    order = order_for_token(session, settings.effective_secret_key, token)
    if order is None:
        raise NotFound("no such link")
    return order


def _page(
    request: Request,
    session: Session,
    order: Order,
    *,
    saved: bool = False,
    errors: list[str] | None = None,
    status_code: int = 200,
) -> Response:
    pref = preference_for(session, order)
    merchant = session.get(Merchant, order.merchant_id)
    return render(
        request,
        "preferences.html",
        {
            "merchant_name": merchant.name if merchant else "",
            "action": request.url.path,
            "channels": (pref.channels if pref and pref.channels else [c for c, _ in CHANNELS]),
            "channel_choices": CHANNELS,
            "locale_choices": LOCALES,
            "locale": (pref.locale if pref else None) or "",
            "quiet_start": (pref.quiet_start if pref else None) or "",
            "quiet_end": (pref.quiet_end if pref else None) or "",
            "opted_out": bool(pref and pref.opted_out),
            "saved": saved,
            "errors": errors or [],
        },
        status_code=status_code,
    )


@router.get("/p/{token}")
@session_page()
def preferences_page(
    token: str, request: Request, session: Session, settings: SettingsDep
) -> Response:
    return _page(request, session, _order(session, settings, token))


@router.post("/p/{token}")
@session_page()
def save_preferences(
    token: str,
    request: Request,
    session: Session,
    settings: SettingsDep,
    clock: ClockDep,
    channels: Annotated[list[str] | None, Form()] = None,
    locale: Annotated[str, Form()] = "",
    quiet_start: Annotated[str, Form()] = "",
    quiet_end: Annotated[str, Form()] = "",
    opted_out: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    order = _order(session, settings, token)
    if not csrf_ok(request, csrf_token):
        return _page(request, session, order, errors=["Please try again."], status_code=403)
    try:
        set_preferences(
            session,
            clock,
            order,
            channels=channels or [],
            locale=locale or None,
            quiet_start=quiet_start or None,
            quiet_end=quiet_end or None,
            opted_out=bool(opted_out),
        )
    except DomainError as exc:
        session.rollback()
        messages = [f"{e.field}: {e.message}" for e in exc.errors] or [exc.detail]
        return _page(request, session, order, errors=messages, status_code=422)
    session.flush()
    return _page(request, session, order, saved=True)


@router.get("/u/{token}")
@session_page()
def unsubscribe_page(
    token: str, request: Request, session: Session, settings: SettingsDep
) -> Response:
    """Opening the link only shows the page (mail scanners follow links); opting out is a POST."""
    return _page(request, session, _order(session, settings, token))


@router.post("/u/{token}")
@session_page()
def one_click_unsubscribe(
    token: str, session: Session, settings: SettingsDep, clock: ClockDep
) -> Response:
    """RFC 8058: the mail client POSTs ``List-Unsubscribe=One-Click``, with no cookies."""
    order = _order(session, settings, token)
    opt_out(session, clock, order, via="one_click")
    return PlainTextResponse("You are unsubscribed.")
