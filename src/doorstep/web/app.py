"""The application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware.sessions import SessionMiddleware

from doorstep import __version__
from doorstep.db.migrate import upgrade
from doorstep.runtime import Runtime
from doorstep.web import openapi, pages, problems
from doorstep.web.api import dispatch, driving, exports, health, orders
from doorstep.web.middleware import MetricsMiddleware, RequestGuardMiddleware

DESCRIPTION = """Doorstep's JSON API. Authenticate with `Authorization: Bearer <api key>`
(create one with `doorstep merchant create`). Errors are RFC 9457 problem details."""


def create_app(runtime: Runtime | None = None, *, migrate: bool = True) -> FastAPI:
    """Build the app. ``runtime`` defaults to one from the environment's settings."""
    runtime = runtime or Runtime.from_settings()
    if migrate:
        upgrade(runtime.engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield

    app = FastAPI(
        title="Doorstep",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    problems.install(app)
    app.add_middleware(
        RequestGuardMiddleware,
        default=runtime.settings.max_body_bytes,
        limits={
            "/orders/import": runtime.settings.max_import_bytes,
            # A photo and a signature, with room for the form around them.
            "/complete": 2 * runtime.settings.proof_max_bytes + 100_000,
            "/fail": runtime.settings.proof_max_bytes + 100_000,
        },
    )
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(
        SessionMiddleware,
        secret_key=runtime.settings.effective_secret_key,
        session_cookie="doorstep_session",
        max_age=runtime.settings.session_max_age_s,
        same_site="lax",
        https_only=runtime.settings.session_cookie_secure,
    )
    pages.install(app, runtime)
    app.include_router(health.router)
    app.include_router(orders.router)
    app.include_router(exports.router)
    app.include_router(dispatch.router)
    app.include_router(driving.router)
    openapi.install(app)
    return app
