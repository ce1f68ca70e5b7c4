"""One threadpool hand-off per page request: the pages' counterpart of :mod:`doorstep.web.calls`
(ADR 0013, issue 18 §6).

FastAPI runs every ``def`` dependency and ``def`` handler in a pool thread of its own. The
console pages used to resolve a session (``SessionDep``), the signed-in user and their role
check as three sync dependencies, then ran the handler and finally committed: five hand-offs,
and on SQLite a write transaction (``BEGIN IMMEDIATE``, taken by the user's look-up) held from
one hand-off to the next. Under load every pool thread then waits for the write lock while its
holder waits for a thread ("database is locked" after ``busy_timeout``).

:func:`console_page` makes a console handler one pool call, as :class:`~doorstep.web.calls.ApiCall`
does for the API: the handler stays a plain ``def`` that declares what it needs by type::

    @router.get("/{order_id}", name="console_order")
    @console_page(Action.ORDERS_READ)
    def order_page(request: Request, order_id: str, me: ConsoleUser, session: Session) -> Response:
        ...

and FastAPI sees an ``async`` endpoint without those parameters. Per request, in ONE pool call:
the transaction opens (read-only for GET and HEAD, so reads never queue behind writers; a write
transaction otherwise), the sign-in cookie is checked against the user (:class:`LoginRequired`,
:class:`ConsoleForbidden` as before), the handler runs (its work and the template render), and
the transaction commits before the answer goes back to the event loop. ``own_transactions=True``
is for handlers that open their own transactions (planning: the optimiser must not hold a write
lock): the user is checked in a short read transaction, closed before the handler runs.

Everything else the handler declares (path and query parameters, forms, the clock, the
settings) stays FastAPI's to resolve; those dependencies are ``async`` and cheap, so they cost no
hand-off. A decorator rather than a ``page.read(work)`` closure as in the API: the handlers keep
their bodies and their signatures tell what they use, and the pool call is made in one place.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Collection
from contextlib import AbstractContextManager
from typing import Any, get_type_hints

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from doorstep.db.engine import transaction
from doorstep.domain.accounts.models import Role
from doorstep.domain.accounts.users import Action
from doorstep.runtime import Runtime
from doorstep.web.pages.auth import ConsoleForbidden, ConsoleUser, console_user

__all__ = [
    "READ_METHODS",
    "console_page",
    "console_user_of",
    "page_transaction",
    "session_page",
]

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_REQUEST = "_page_request"  # the parameter added when the handler does not take the request

Handler = Callable[..., Response]


def page_transaction(runtime: Runtime, request: Request) -> AbstractContextManager[Session]:
    """The request's transaction: read-only for safe methods, a write transaction otherwise."""
    factory = runtime.read_sessions if request.method in READ_METHODS else runtime.sessions
    return transaction(factory)


def _signed_in(
    request: Request, session: Session, action: Action | None, roles: frozenset[Role] | None
) -> ConsoleUser:
    me = console_user(request, session, request.app.state.runtime.settings)
    if (action is not None and not me.can(action)) or (roles is not None and me.role not in roles):
        raise ConsoleForbidden("your role does not give access to this page")
    return me


async def console_user_of(request: Request, action: Action | None = None) -> ConsoleUser:
    """The signed-in user (with ``action``'s permission), checked in one pool call of its own:
    for ``async`` handlers such as live streams, whose work is not one synchronous call."""

    def check() -> ConsoleUser:
        runtime: Runtime = request.app.state.runtime
        with transaction(runtime.read_sessions) as session:
            return _signed_in(request, session, action, None)

    return await run_in_threadpool(check)


def console_page(
    action: Action | None = None,
    *,
    roles: Collection[Role] | None = None,
    own_transactions: bool = False,
) -> Callable[[Handler], Callable[..., Any]]:
    """Run a console handler, its sign-in check (and ``action``'s permission, or one of
    ``roles``), its work, its commit and its render in one pool call. Parameters annotated
    :class:`ConsoleUser` and :class:`~sqlalchemy.orm.Session` receive the signed-in user and the
    request's session."""
    return _one_call(
        signed_in=True,
        action=action,
        allowed=frozenset(roles) if roles is not None else None,
        own_transactions=own_transactions,
    )


def session_page() -> Callable[[Handler], Callable[..., Any]]:
    """Run a page handler without console sign-in (a recipient's link: preferences,
    unsubscribe) in one pool call with the request's transaction: the parameter annotated
    :class:`~sqlalchemy.orm.Session` receives it, committed before the answer is sent."""
    return _one_call(signed_in=False, action=None, allowed=None, own_transactions=False)


def _one_call(
    *,
    signed_in: bool,
    action: Action | None,
    allowed: frozenset[Role] | None,
    own_transactions: bool,
) -> Callable[[Handler], Callable[..., Any]]:
    def decorate(handler: Handler) -> Callable[..., Any]:
        hints = get_type_hints(handler, include_extras=True)
        signature = inspect.signature(handler)
        user_param = session_param = request_param = None
        kept: list[inspect.Parameter] = []
        for name, param in signature.parameters.items():
            hint = hints.get(name, param.annotation)
            if hint is ConsoleUser:
                user_param = name
            elif hint is Session:
                session_param = name
            else:
                if hint is Request:
                    request_param = name
                # Keyword-only: the endpoint takes ``**kwargs``, and removing the injected
                # parameters must not leave one without a default before one with it.
                kept.append(param.replace(annotation=hint, kind=inspect.Parameter.KEYWORD_ONLY))
        if (user_param is None) == signed_in:
            wanted = "takes" if signed_in else "takes no"
            raise TypeError(f"{handler.__name__}: this page {wanted} a ConsoleUser")
        if session_param is not None and own_transactions:
            raise TypeError(f"{handler.__name__}: own_transactions takes no request session")
        if request_param is None:
            kept.append(
                inspect.Parameter(_REQUEST, inspect.Parameter.KEYWORD_ONLY, annotation=Request)
            )

        def call(request: Request, kwargs: dict[str, Any]) -> Response:
            runtime: Runtime = request.app.state.runtime
            if own_transactions:
                assert user_param is not None
                with transaction(runtime.read_sessions) as session:
                    kwargs[user_param] = _signed_in(request, session, action, allowed)
                return handler(**kwargs)
            with page_transaction(runtime, request) as session:
                if user_param is not None:
                    kwargs[user_param] = _signed_in(request, session, action, allowed)
                if session_param is not None:
                    kwargs[session_param] = session
                return handler(**kwargs)

        @functools.wraps(handler, assigned=("__module__", "__name__", "__qualname__", "__doc__"))
        async def endpoint(**kwargs: Any) -> Response:
            request: Request = kwargs[request_param] if request_param else kwargs.pop(_REQUEST)
            return await run_in_threadpool(call, request, kwargs)

        del endpoint.__wrapped__  # FastAPI must see the async endpoint, not the sync handler
        endpoint.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=kept, return_annotation=Response
        )
        return endpoint

    return decorate
