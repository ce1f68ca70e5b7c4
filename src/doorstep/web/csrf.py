"""CSRF protection for the console's HTML forms: a random token per session, rendered in a
hidden ``csrf_token`` field and compared in constant time on every state-changing POST.

The session cookie is also ``SameSite=Lax``, which already stops cross-site POSTs in current
browsers; the token is the second, browser-independent layer. The JSON API does not use
cookies (it takes a bearer key), so it needs no token.
"""

from __future__ import annotations

import hmac
import secrets

from starlette.requests import Request

SESSION_KEY = "csrf"
FIELD_NAME = "csrf_token"


def csrf_token(request: Request) -> str:
    """This session's token, created on first use (the session cookie then carries it)."""
    token = request.session.get(SESSION_KEY)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        request.session[SESSION_KEY] = token
    return token


def rotate_csrf_token(request: Request) -> str:
    """A fresh token, e.g. when the user behind the session changes."""
    token = secrets.token_urlsafe(32)
    request.session[SESSION_KEY] = token
    return token


def csrf_ok(request: Request, submitted: str | None) -> bool:
    """Whether ``submitted`` is this session's token (``False`` when either is missing)."""
    expected = request.session.get(SESSION_KEY)
    if not isinstance(expected, str) or not expected or not submitted:
        return False
    return hmac.compare_digest(expected.encode(), submitted.encode())
