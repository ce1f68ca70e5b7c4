"""Console sign-in and sign-out, and :func:`console_user`, which every console page's one pool
call (:func:`doorstep.web.pages.calls.console_page`) uses to know who is asking.

Sessions are Starlette's signed cookies (see ``web/app.py``). The cookie holds the user's id,
a fingerprint of their password hash (so a password change ends every other session) and the
CSRF token. Each request reloads the user and re-checks that they are still active.

A signed cookie cannot be revoked one by one on the server: signing out clears it in the
browser, but a copy taken before stays valid until ``session_max_age_s`` runs out, unless the
password changes or the user is deactivated.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from doorstep.db.engine import transaction
from doorstep.domain.accounts.login_links import LinkInvalid, redeem_login_link
from doorstep.domain.accounts.models import Merchant, Role, User
from doorstep.domain.accounts.users import (
    Action,
    InvalidCredentials,
    LoginThrottle,
    TooManyAttempts,
    authenticate_user,
    can,
    get_active_user,
)
from doorstep.domain.errors import Forbidden
from doorstep.settings import Settings
from doorstep.web.csrf import csrf_ok, rotate_csrf_token
from doorstep.web.deps import RuntimeDep
from doorstep.web.templating import render

router = APIRouter(prefix="/console", include_in_schema=False)

LOGIN_PATH = "/console/login"
HOME_PATH = "/console"
SESSION_USER = "uid"
SESSION_AUTH = "auth"

BAD_CREDENTIALS = "The e-mail or password is incorrect."
LINK_INVALID = (
    "This sign-in link is not valid or has expired. Sign in with your e-mail and password."
)
FORM_EXPIRED = "The sign-in form expired. Please try again."


class LoginRequired(Exception):
    """Raised by :func:`console_user` when nobody is signed in; answered with a redirect to
    the sign-in page (see ``pages.install``)."""

    def __init__(self, next_path: str | None) -> None:
        super().__init__("login required")
        self.next_path = next_path


class ConsoleForbidden(Forbidden):
    """A signed-in user asked for something their role does not allow (an HTML 403 page)."""


@dataclass(frozen=True)
class ConsoleUser:
    """The signed-in user and their merchant, as console pages receive them."""

    user: User
    merchant: Merchant

    @property
    def role(self) -> Role:
        return Role(self.user.role)

    def can(self, action: Action | str) -> bool:
        return can(self.role, action)


def session_fingerprint(secret_key: str, user: User) -> str:
    """Binds a session to the user's current password hash without revealing it."""
    message = f"console-session:{user.id}:{user.password_hash}".encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()[:32]


def safe_next(value: str | None) -> str:
    """Where to go after signing in: only a console path of this site, never elsewhere."""
    if (
        value
        and value.startswith(HOME_PATH)
        and not value.startswith("//")
        and "\\" not in value
        and not any(ord(c) < 32 for c in value)
        and not value.startswith(LOGIN_PATH)
    ):
        return value
    return HOME_PATH


def console_user(request: Request, session: Session, settings: Settings) -> ConsoleUser:
    """The signed-in, still active user, or :class:`LoginRequired`. Called in the request's
    one pool call (:func:`doorstep.web.pages.calls.console_page`), in its transaction."""
    next_path = None
    if request.method == "GET":
        next_path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    user_id = request.session.get(SESSION_USER)
    if not isinstance(user_id, str):
        raise LoginRequired(next_path)
    user = get_active_user(session, user_id)
    fingerprint = request.session.get(SESSION_AUTH)
    if (
        user is None
        or not isinstance(fingerprint, str)
        or not hmac.compare_digest(
            fingerprint, session_fingerprint(settings.effective_secret_key, user)
        )
    ):
        request.session.clear()
        raise LoginRequired(next_path)
    merchant = session.get(Merchant, user.merchant_id)
    if merchant is None:  # pragma: no cover - the foreign key guarantees it
        raise LoginRequired(next_path)
    request.state.console_user = user.id
    return ConsoleUser(user=user, merchant=merchant)


async def login_throttle(request: Request) -> LoginThrottle:
    throttle: LoginThrottle = request.app.state.login_throttle
    return throttle


ThrottleDep = Annotated[LoginThrottle, Depends(login_throttle)]


def _login_page(
    request: Request,
    *,
    email: str = "",
    next_path: str = "",
    error: str | None = None,
    notice: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    return render(
        request,
        "login.html",
        {"email": email, "next": next_path, "error": error, "notice": notice},
        status_code=status_code,
        headers=headers,
    )


@router.get("/login", name="console_login")
def login_form(request: Request, next: str = "", signed_out: bool = False) -> Response:
    """The sign-in form (straight to the console when already signed in)."""
    if isinstance(request.session.get(SESSION_USER), str):
        return RedirectResponse(safe_next(next), status_code=303)
    notice = "You have signed out." if signed_out else None
    return _login_page(request, next_path=next, notice=notice)


@router.post("/login", name="console_login_submit")
def login_submit(
    request: Request,
    runtime: RuntimeDep,
    throttle: ThrottleDep,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=4096)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Check the CSRF token, then the credentials; one message for every wrong answer.
    One pool call (a ``def`` handler whose dependencies are ``async``), one transaction."""
    if not csrf_ok(request, csrf_token):
        return _login_page(
            request, email=email, next_path=next, error=FORM_EXPIRED, status_code=403
        )
    try:
        with transaction(runtime.sessions) as session:
            user = authenticate_user(session, runtime.clock, email, password, throttle=throttle)
    except TooManyAttempts as exc:
        retry = str(max(1, int(exc.retry_after.total_seconds())))
        minutes = exc.retry_after_minutes
        return _login_page(
            request,
            email=email,
            next_path=next,
            error="Too many failed sign-in attempts for this e-mail. "
            f"Try again in {minutes} minute{'s' if minutes != 1 else ''}.",
            status_code=429,
            headers={"Retry-After": retry},
        )
    except InvalidCredentials:
        # 200, not 401: a form sign-in has no WWW-Authenticate challenge to offer.
        return _login_page(request, email=email, next_path=next, error=BAD_CREDENTIALS)
    return _signed_in(request, runtime.settings.effective_secret_key, user, next)


def _signed_in(request: Request, secret_key: str, user: User, next_path: str) -> Response:
    """Start ``user``'s session in this browser and go on to ``next_path`` (a console path)."""
    # A new user behind this browser: start from an empty session (no fixation) and a new token.
    request.session.clear()
    request.session[SESSION_USER] = user.id
    request.session[SESSION_AUTH] = session_fingerprint(secret_key, user)
    rotate_csrf_token(request)
    return RedirectResponse(safe_next(next_path), status_code=303)


@router.get("/login/{token}", name="console_login_link")
def login_link(
    request: Request,
    token: str,
    runtime: RuntimeDep,
    next: str = "",
) -> Response:
    """A one-time sign-in link (see ``domain/accounts/login_links.py``): used once, it signs
    its user in and opens the console; any bad link gets the sign-in form and one message.
    A GET that writes (the link is spent), so it takes a writing transaction of its own."""
    try:
        with transaction(runtime.sessions) as session:
            user = redeem_login_link(session, runtime.clock, token[:200])
    except LinkInvalid:
        return _login_page(request, next_path=next, error=LINK_INVALID, status_code=400)
    return _signed_in(request, runtime.settings.effective_secret_key, user, next)


@router.post("/logout", name="console_logout")
def logout(request: Request, csrf_token: Annotated[str, Form(max_length=200)] = "") -> Response:
    """Sign out: clear the session cookie and return to the sign-in page."""
    if not isinstance(request.session.get(SESSION_USER), str):
        return RedirectResponse(LOGIN_PATH, status_code=303)
    if not csrf_ok(request, csrf_token):
        raise ConsoleForbidden("the sign-out form expired; reload the page and try again")
    request.session.clear()
    return RedirectResponse(f"{LOGIN_PATH}?signed_out=1", status_code=303)


def login_redirect(exc: LoginRequired) -> RedirectResponse:
    """Where :class:`LoginRequired` sends the browser."""
    target = LOGIN_PATH
    if exc.next_path and safe_next(exc.next_path) != HOME_PATH:
        target += "?next=" + quote(exc.next_path, safe="/")
    return RedirectResponse(target, status_code=303)
