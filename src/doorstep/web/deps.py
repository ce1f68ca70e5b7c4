"""FastAPI dependencies as ``Annotated`` aliases: the runtime, the clock, the settings, and the
JSON content-type check. All are ``async`` and touch no database, so they cost no pool hand-off.

There is deliberately no session or caller dependency: a sync dependency is a pool hand-off of
its own, and a write transaction opened in one hand-off and committed in another is what locked
SQLite under load (issue 18 §6). A request's database work, with its authentication, commit and
rendering, runs in one pool call: :mod:`doorstep.web.calls` for the API,
:mod:`doorstep.web.pages.calls` for the console and recipients' pages, the driver app's
``def`` handlers for it (ADR 0013)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from doorstep.clock import Clock
from doorstep.domain.errors import DomainError
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


SettingsDep = Annotated[Settings, Depends(get_settings)]
ClockDep = Annotated[Clock, Depends(get_clock)]


async def require_json(request: Request) -> None:
    """Refuse bodies that are not JSON with 415 instead of a confusing validation error."""
    if request.method in ("POST", "PUT", "PATCH"):
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype and ctype != "application/json" and not ctype.endswith("+json"):
            raise UnsupportedMediaType(f"expected application/json, got {ctype!r}")


JSONBody = Depends(require_json)
