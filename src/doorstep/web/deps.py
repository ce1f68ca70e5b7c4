"""FastAPI dependencies as ``Annotated`` aliases: a session, the clock, the settings or the calling
merchant, each resolved on its own.

New and converted ``/v1`` endpoints use :mod:`doorstep.web.calls` instead, which does a request's
authentication, work, commit and serialisation in one pool-thread call (ADR 0013): the sync
dependencies below cost a pool hand-off each, and a write transaction opened in one and
committed in another is what locked SQLite under load. They stay for endpoints not converted
yet; the cheap ones are ``async`` so they cost no hand-off."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from doorstep.clock import Clock
from doorstep.domain.accounts.models import Merchant
from doorstep.domain.accounts.service import (
    API_KEY_PREFIX,
    authenticate_api_key,
    needs_touch,
    touch_api_key,
)
from doorstep.domain.errors import Actor, DomainError, Unauthorized
from doorstep.runtime import Runtime
from doorstep.settings import Settings


class UnsupportedMediaType(DomainError):
    status_code = 415
    title = "Unsupported media type"
    type_slug = "unsupported-media-type"


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_settings(runtime: RuntimeDep) -> Settings:
    return runtime.settings


async def get_clock(runtime: RuntimeDep) -> Clock:
    return runtime.clock


_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_session(request: Request, runtime: RuntimeDep) -> Iterator[Session]:
    """One transaction per request: committed when the handler returns, rolled back on error.
    Safe methods get a read-only session, so reads never queue behind writers on SQLite."""
    factory = runtime.read_sessions if request.method in _READ_METHODS else runtime.sessions
    with factory() as session, session.begin():
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
ClockDep = Annotated[Clock, Depends(get_clock)]
# scope="function": commit before the answer is sent, so a client never sees a success whose
# commit then failed, nor reads its next request before the change is visible.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def get_merchant(request: Request, session: SessionDep, clock: ClockDep) -> Merchant:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send your API key as 'Authorization: Bearer <key>'")
    merchant, key = authenticate_api_key(session, clock, token.strip())
    if needs_touch(key, clock):  # at most once a minute per key
        if request.method in _READ_METHODS:
            # A read-only request records it in a short write transaction of its own.
            runtime: Runtime = request.app.state.runtime
            with runtime.sessions() as write, write.begin():
                touch_api_key(write, clock, key.id)
        else:
            touch_api_key(session, clock, key.id)
    request.state.merchant_id = merchant.id
    request.state.api_key_prefix = key.prefix
    return merchant


MerchantDep = Annotated[Merchant, Depends(get_merchant)]


def get_api_actor(request: Request, merchant: MerchantDep) -> Actor:
    """The API key acting, by its public prefix (``dsk_<prefix>``), for the event log."""
    return Actor("api_key", f"{API_KEY_PREFIX}_{request.state.api_key_prefix}")


def get_merchant_outside_transaction(merchant: MerchantDep, session: SessionDep) -> Merchant:
    """The authenticated merchant, with the request's transaction committed and closed.

    Verbs that open transactions of their own need it: an idempotency key claim must be visible
    to a concurrent retry, and the optimiser must not hold a write lock while it searches; on
    SQLite a still-open request transaction would block them."""
    session.commit()
    return merchant


ApiActorDep = Annotated[Actor, Depends(get_api_actor)]
OwnTransactionsMerchantDep = Annotated[Merchant, Depends(get_merchant_outside_transaction)]


async def require_json(request: Request) -> None:
    """Refuse bodies that are not JSON with 415 instead of a confusing validation error."""
    if request.method in ("POST", "PUT", "PATCH"):
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype and ctype != "application/json" and not ctype.endswith("+json"):
            raise UnsupportedMediaType(f"expected application/json, got {ctype!r}")


JSONBody = Depends(require_json)
