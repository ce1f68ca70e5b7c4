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
from doorstep.web.api import dispatch, exports, health, messages, orders, webhooks
from doorstep.web.middleware import MetricsMiddleware, RequestGuardMiddleware
from doorstep.worker import Runner, registered_jobs

DESCRIPTION = """Doorstep's JSON API. Authenticate with `Authorization: Bearer <api key>`
(create one with `doorstep merchant create`). Errors are RFC 9457 problem details."""


def create_app(runtime: Runtime | None = None, *, migrate: bool = True) -> FastAPI:
    """Build the app. ``runtime`` defaults to one from the environment's settings."""
    runtime = runtime or Runtime.from_settings()
    if migrate:
        upgrade(runtime.engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Background work in-process unless ``doorstep serve --no-worker`` (or
        # DOORSTEP_RUN_WORKER=false): the outbox relay and the other registered jobs.
        runner: Runner | None = None
        thread = None
        if runtime.settings.run_worker:
            runner = Runner(runtime, registered_jobs())
            thread = runner.start_thread()
        app.state.worker = runner
        try:
            yield
        finally:
            if runner is not None and thread is not None:
                runner.stop()
                thread.join(timeout=30)

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
        limits={"/orders/import": runtime.settings.max_import_bytes},
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
    app.include_router(webhooks.router)
    app.include_router(messages.router)
    app.include_router(messages.settings_router)
    openapi.install(app)
    return app
