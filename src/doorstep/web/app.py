"""The application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware.sessions import SessionMiddleware

from doorstep import __version__
from doorstep.db.migrate import upgrade
from doorstep.domain.tracking.ingest import PositionIngest
from doorstep.live import publish_taken_positions
from doorstep.runtime import Runtime
from doorstep.web import docs_page, openapi, pages, problems
from doorstep.web.api import (
    analytics,
    dispatch,
    driving,
    exports,
    health,
    imports,
    ingest,
    merchant,
    messages,
    orders,
    selfservice,
    slots,
    tracks,
    webhooks,
)
from doorstep.web.middleware import MetricsMiddleware, RequestGuardMiddleware
from doorstep.worker import Runner, registered_jobs

DESCRIPTION = """Doorstep's JSON API. Authenticate with `Authorization: Bearer <api key>`
(create one with `doorstep merchant create`). Errors are RFC 9457 problem details."""


def create_app(runtime: Runtime | None = None, *, migrate: bool = True) -> FastAPI:
    """Build the app. ``runtime`` defaults to one from the environment's settings."""
    runtime = runtime or Runtime.from_settings()
    if migrate:
        upgrade(runtime.engine)

    position_ingest = PositionIngest.for_runtime(runtime)
    # Positions are bulk-inserted, out of the session hook's sight: publish each driver's new
    # current fix as soon as it is taken, not after the write buffer's next flush (ADR 0020).
    position_ingest.on_current.append(publish_taken_positions(runtime.live))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The live bus subscribes (Redis) before the server takes its first request.
        await runtime.live.start()
        position_ingest.start()
        subscriber = None
        if runtime.settings.mqtt_url:
            from doorstep.web.owntracks_mqtt import OwnTracksSubscriber

            subscriber = OwnTracksSubscriber(
                runtime.settings.mqtt_url, position_ingest, group=runtime.settings.mqtt_group
            )
            subscriber.start()
        app.state.owntracks_subscriber = subscriber
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
            if subscriber is not None:
                subscriber.stop()
            position_ingest.close()  # write what is still buffered: a clean stop loses nothing

    app = FastAPI(
        title="Doorstep",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served by docs_page from our own files, not a CDN
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.state.position_ingest = position_ingest
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
    # The busiest endpoints first: every request walks the route table (each included router
    # route by route) until it matches, so the API comes before the many page routes.
    app.include_router(ingest.router)
    app.include_router(health.router)
    app.include_router(orders.router)
    app.include_router(imports.router)
    app.include_router(exports.router)
    app.include_router(dispatch.router)
    app.include_router(tracks.router)
    app.include_router(slots.router)
    app.include_router(selfservice.router)
    app.include_router(merchant.router)
    app.include_router(driving.router)
    app.include_router(webhooks.router)
    app.include_router(messages.router)
    app.include_router(messages.settings_router)
    app.include_router(analytics.router)
    docs_page.install(app)
    pages.install(app, runtime)
    openapi.install(app)
    return app
