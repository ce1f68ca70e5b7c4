"""HTML pages: the console (sign-in, home; later the dispatcher map and the rest), and the
static files they use, all served from this process with nothing fetched from a CDN.

:func:`install` wires them into the app: static files at ``/static`` and Leaflet (from the
``xstatic-leaflet`` package) at ``/static/leaflet``, the routers, the login throttle and the
handlers that turn :class:`~doorstep.web.pages.auth.LoginRequired` into a redirect and
:class:`~doorstep.web.pages.auth.ConsoleForbidden` into an HTML 403 page.
"""

from __future__ import annotations

from datetime import timedelta

import xstatic.pkg.leaflet as xstatic_leaflet
from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from doorstep.domain.accounts.users import LoginThrottle, warm_up
from doorstep.domain.dispatch.signin import CodeThrottle
from doorstep.runtime import Runtime
from doorstep.web import problems
from doorstep.web.pages import (
    analytics,
    auth,
    console,
    dispatch,
    dispatch_live,
    driver,
    fleet,
    fleet_device,
    message_templates,
    orders,
    orders_import,
    preferences,
    settings,
    slots,
    tracking,
)
from doorstep.web.templating import LEAFLET_PREFIX, STATIC_DIR, STATIC_PREFIX, render

__all__ = ["install"]


def install(app: FastAPI, runtime: Runtime) -> None:
    """Serve the pages and their static files from ``app``."""
    app.state.login_throttle = LoginThrottle(runtime.clock)
    app.state.driver_code_throttle = CodeThrottle(
        runtime.clock,
        max_failures=runtime.settings.driver_login_max_failures,
        lockout=timedelta(seconds=runtime.settings.driver_login_lockout_s),
    )
    warm_up()
    # Leaflet first: the /static mount would otherwise swallow /static/leaflet/...
    app.mount(
        LEAFLET_PREFIX,
        StaticFiles(directory=xstatic_leaflet.BASE_DIR),
        name="leaflet",
    )
    app.mount(STATIC_PREFIX, StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(auth.router)
    app.include_router(console.router)
    app.include_router(dispatch_live.router)
    app.include_router(dispatch.router)
    app.include_router(fleet_device.router)  # before fleet's catch-all /{kind}/{id}/{change}
    app.include_router(fleet.router)
    app.include_router(orders_import.router)  # before orders' catch-all /{order_id}
    app.include_router(orders.router)
    app.include_router(slots.router)
    app.include_router(settings.router)
    app.include_router(message_templates.router)
    app.include_router(analytics.router)
    tracking.install(app, runtime)
    app.include_router(driver.router)
    app.include_router(preferences.router)

    async def _login_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, auth.LoginRequired)
        return auth.login_redirect(exc)

    async def _forbidden(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, auth.ConsoleForbidden)
        return render(
            request,
            "error.html",
            {"title": "Not allowed", "message": exc.detail},
            status_code=403,
        )

    problems.add_error_page(app, driver.server_error_page)
    app.add_exception_handler(auth.LoginRequired, _login_required)
    app.add_exception_handler(auth.ConsoleForbidden, _forbidden)
