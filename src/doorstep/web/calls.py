"""One threadpool hand-off per API request: authentication, the work, the commit and the
serialisation of the answer run together in one call to a pool thread (ADR 0013).

FastAPI runs every ``def`` dependency and ``def`` handler in a pool thread of its own. With the
old dependencies a creating request opened SQLite's write transaction (``BEGIN IMMEDIATE``) to
authenticate in one pool call and committed in a later one: under load every pool thread waited
for the write lock while the holder waited for a thread, and requests failed with "database is
locked". Here a handler is ``async def``, its dependencies are cheap and ``async``, and it hands
one function to the pool through :class:`ApiCall`::

    @router.get("/orders/{order_id}", response_model=OrderOut)
    async def get_order(order_id: str, api: ApiCallDep) -> Response:
        def work(session: Session, caller: Caller) -> Response:
            return json_response(OrderOut.of(queries.get_order(session, caller.merchant_id,
                                 order_id), ...))
        return await api.read(work)

* :meth:`ApiCall.read` — a read-only transaction (never queues behind writers on SQLite);
* :meth:`ApiCall.write` — one write transaction for authentication and work, committed before
  the answer is sent;
* :meth:`ApiCall.idempotent` — the ``Idempotency-Key`` protocol (claim, work + stored answer);
* :meth:`ApiCall.own_transactions` — verbs that open their own transactions (planning).

There is no cache of keys: every request reads its key, so a revoked key stops at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo

from fastapi import Depends, Header, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from doorstep.clock import Clock
from doorstep.db.engine import transaction
from doorstep.domain import idempotency
from doorstep.domain.accounts.models import ApiKey, Merchant
from doorstep.domain.accounts.service import (
    API_KEY_PREFIX,
    authenticate_api_key,
    needs_touch,
    touch_api_key,
)
from doorstep.domain.errors import Actor, Unauthorized
from doorstep.domain.idempotency import Answer, IdempotentRequest, StoreAnswer
from doorstep.runtime import Runtime
from doorstep.settings import Settings
from doorstep.web.idempotency import respond

T = TypeVar("T")


@dataclass(frozen=True)
class Caller:
    """The authenticated caller of one request: its merchant and API key, with the runtime."""

    runtime: Runtime
    merchant: Merchant
    key_prefix: str

    @property
    def merchant_id(self) -> str:
        return self.merchant.id

    @property
    def clock(self) -> Clock:
        return self.runtime.clock

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @property
    def actor(self) -> Actor:
        """The API key acting, by its public prefix (``dsk_<prefix>``), for the event log."""
        return Actor("api_key", f"{API_KEY_PREFIX}_{self.key_prefix}")

    @cached_property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.merchant.timezone)


@dataclass(frozen=True)
class PendingKey:
    """An ``Idempotency-Key`` and the request it came with, before the merchant is known."""

    key: str
    method: str
    path: str
    fingerprint: str

    def of(self, merchant_id: str) -> IdempotentRequest:
        return IdempotentRequest(merchant_id, self.key, self.method, self.path, self.fingerprint)


def json_response(
    model: BaseModel | list[BaseModel],
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """``model`` serialised as its ``response_model`` would be, ready to send (done in the
    pool thread, so the event loop only writes bytes)."""
    if isinstance(model, list):
        body = b"[" + b",".join(m.model_dump_json(by_alias=True).encode() for m in model) + b"]"
    else:
        body = model.model_dump_json(by_alias=True).encode()
    return Response(body, status_code=status_code, media_type="application/json", headers=headers)


class ApiCall:
    """A request's API work, run in one pool thread; see the module notes."""

    def __init__(self, request: Request, runtime: Runtime, token: str) -> None:
        self.request = request
        self.runtime = runtime
        self.token = token

    # --- authentication (in the pool thread) ---

    def _authenticate(self, session: Session) -> tuple[Caller, ApiKey]:
        merchant, key = authenticate_api_key(session, self.runtime.clock, self.token)
        self.request.state.merchant_id = merchant.id
        return Caller(self.runtime, merchant, key.prefix), key

    def _authenticate_apart(self) -> Caller:
        """Authenticate in a read-only transaction of its own (and record the key's use, at
        most once a minute, in a short write transaction after it)."""
        with transaction(self.runtime.read_sessions) as session:
            caller, key = self._authenticate(session)
            stale = needs_touch(key, self.runtime.clock)
        if stale:
            with transaction(self.runtime.sessions) as session:
                touch_api_key(session, self.runtime.clock, key.id)
        return caller

    def _authenticate_in(self, session: Session) -> Caller:
        """Authenticate inside the request's write transaction (use recorded in it too)."""
        caller, key = self._authenticate(session)
        if needs_touch(key, self.runtime.clock):
            touch_api_key(session, self.runtime.clock, key.id)
        return caller

    async def check(self) -> None:
        """Authenticate only (raises :class:`Unauthorized`): for answers given without work."""
        await run_in_threadpool(self._authenticate_apart)

    # --- the four shapes of work ---

    async def read(self, work: Callable[[Session, Caller], T]) -> T:
        """``work`` in a read-only transaction, authentication first, in one pool call."""

        def call() -> T:
            with transaction(self.runtime.read_sessions) as session:
                caller, key = self._authenticate(session)
                result = work(session, caller)
                stale = needs_touch(key, self.runtime.clock)
            if stale:
                with transaction(self.runtime.sessions) as session:
                    touch_api_key(session, self.runtime.clock, key.id)
            return result

        return await run_in_threadpool(call)

    async def write(self, work: Callable[[Session, Caller], T]) -> T:
        """Authentication and ``work`` in one write transaction, committed before returning."""

        def call() -> T:
            with transaction(self.runtime.sessions) as session:
                # ``caller`` (and its merchant) stays referenced until the commit: the identity
                # map holds objects weakly, and the flush listeners look the merchant up again.
                caller = self._authenticate_in(session)
                result = work(session, caller)
            return result

        return await run_in_threadpool(call)

    async def idempotent(
        self,
        key: PendingKey | None,
        action: Callable[[Session, Caller], Answer],
        *,
        location: Callable[[Answer], str] | None = None,
    ) -> Response:
        """``action`` at most once per ``Idempotency-Key`` (:func:`idempotency.run`); without
        a key, authentication and action share one write transaction."""

        def call() -> Response:
            if key is None:
                with transaction(self.runtime.sessions) as session:
                    caller = self._authenticate_in(session)  # referenced until the commit
                    answer = action(session, caller)
            else:
                caller = self._authenticate_apart()
                answer = idempotency.run(
                    self.runtime.sessions,
                    self.runtime.clock,
                    key.of(caller.merchant_id),
                    lambda session: action(session, caller),
                )
            where = location(answer) if location is not None and answer.success else None
            return respond(answer, location=where)

        return await run_in_threadpool(call)

    async def own_transactions(
        self,
        key: PendingKey | None,
        action: Callable[[StoreAnswer, Caller], Answer],
        *,
        lease: Callable[[Caller], timedelta] | None = None,
    ) -> Response:
        """``action``, which opens its own transactions (the optimiser runs between them), at
        most once per key (:func:`idempotency.run_with_own_transactions`)."""

        def call() -> Response:
            caller = self._authenticate_apart()
            request = key.of(caller.merchant_id) if key is not None else None
            answer = idempotency.run_with_own_transactions(
                self.runtime.sessions,
                self.runtime.clock,
                request,
                lambda store: action(store, caller),
                lease=lease(caller) if lease is not None else idempotency.IN_FLIGHT_LEASE,
            )
            return respond(answer)

        return await run_in_threadpool(call)

    async def run(self, work: Callable[[Caller], T]) -> T:
        """``work`` after authentication, for work that manages its own sessions."""

        def call() -> T:
            return work(self._authenticate_apart())

        return await run_in_threadpool(call)


async def get_api_call(request: Request) -> ApiCall:
    """The request's :class:`ApiCall`; a missing or malformed ``Authorization`` is a 401 at
    once. The key itself is checked in the pool call, with the work."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send your API key as 'Authorization: Bearer <key>'")
    call = ApiCall(request, request.app.state.runtime, token.strip())
    # Read by the validation-error handler: an invalid body from an unknown key is a 401.
    request.state.api_call = call
    return call


ApiCallDep = Annotated[ApiCall, Depends(get_api_call)]


async def get_pending_key(
    request: Request,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Retry-safe key (IETF httpapi draft); answers are kept 24 h",
        ),
    ] = None,
) -> PendingKey | None:
    """The request under its ``Idempotency-Key``, or None when the client sent none."""
    if idempotency_key is None:
        return None
    key = idempotency.parse_key(idempotency_key)
    body = await request.body()
    return PendingKey(
        key=key,
        method=request.method,
        path=request.url.path,
        fingerprint=idempotency.fingerprint(request.method, request.url.path, body),
    )


IdempotencyKeyDep = Annotated[PendingKey | None, Depends(get_pending_key)]


def problem_for_invalid_body(request: Request) -> ApiCall | None:
    """The request's :class:`ApiCall` when it came through :data:`ApiCallDep` (whose key must
    be checked before a validation error is answered), else None."""
    call: Any = getattr(request.state, "api_call", None)
    return call if isinstance(call, ApiCall) else None


__all__ = [
    "ApiCall",
    "ApiCallDep",
    "Caller",
    "IdempotencyKeyDep",
    "PendingKey",
    "json_response",
    "problem_for_invalid_body",
]
