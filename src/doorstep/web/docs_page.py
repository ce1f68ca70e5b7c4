"""``/docs`` (Swagger UI) from our own static files, so the API reference works offline; and
``/``, which leads to the console.

The Swagger UI assets come from the ``swagger-ui-bundle`` package, mounted under
``/static/swagger-ui``; FastAPI's own ``/docs`` and ``/redoc`` load theirs from a CDN and are
turned off in :func:`doorstep.web.app.create_app`. The packaged Swagger UI (4.15) reads OpenAPI
3.0 only, so it is given the schema told as 3.0 (:func:`as_openapi_30`)."""

from __future__ import annotations

from typing import Any

import swagger_ui_bundle  # type: ignore[import-untyped]  # no stubs; one path constant used
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

SWAGGER_PREFIX = "/static/swagger-ui"
DOCS_PATH = "/docs"
OAUTH2_REDIRECT_PATH = "/docs/oauth2-redirect"
DOCS_SCHEMA_PATH = "/docs/openapi-3.0.json"


def as_openapi_30(node: Any) -> Any:
    """The OpenAPI 3.1 document FastAPI writes, told as 3.0 for the packaged Swagger UI (4.x
    reads only 3.0): ``anyOf [X, null]`` becomes ``X`` with ``nullable``, ``const`` an ``enum``
    and numeric ``exclusiveMinimum``/``exclusiveMaximum`` their 3.0 boolean form.
    ``/openapi.json`` itself stays 3.1."""
    if isinstance(node, list):
        return [as_openapi_30(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: as_openapi_30(value) for key, value in node.items()}
    if out.get("openapi", "").startswith("3.1"):
        out["openapi"] = "3.0.3"
    for combinator in ("anyOf", "oneOf"):
        options = out.get(combinator)
        if isinstance(options, list) and {"type": "null"} in options:
            rest = [o for o in options if o != {"type": "null"}]
            del out[combinator]
            if len(rest) == 1 and isinstance(rest[0], dict):
                merged = {**rest[0], **out} if "$ref" not in rest[0] else {"allOf": rest, **out}
                out = {**merged, "nullable": True}
            else:
                out = {**out, combinator: rest, "nullable": True}
    if "const" in out:
        out["enum"] = [out.pop("const")]
    for bound, flag in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(out.get(bound), int | float) and not isinstance(out.get(bound), bool):
            out[flag] = out[bound]
            out[bound] = True
    if out.get("type") == "null":
        out.pop("type")
        out["nullable"] = True
    return out


def install(app: FastAPI) -> None:
    """Mount the Swagger UI assets and serve ``/docs`` and ``/`` (call before the ``/static``
    mount, which would otherwise swallow ``/static/swagger-ui/...``)."""
    app.mount(
        SWAGGER_PREFIX,
        StaticFiles(directory=swagger_ui_bundle.swagger_ui_path),
        name="swagger-ui",
    )

    @app.get(DOCS_PATH, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=DOCS_SCHEMA_PATH,
            title=f"{app.title} API",
            swagger_js_url=f"{SWAGGER_PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER_PREFIX}/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg",
            oauth2_redirect_url=OAUTH2_REDIRECT_PATH,
        )

    @app.get(DOCS_SCHEMA_PATH, include_in_schema=False)
    async def docs_schema() -> JSONResponse:
        return JSONResponse(as_openapi_30(app.openapi()))

    @app.get(OAUTH2_REDIRECT_PATH, include_in_schema=False)
    async def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse("/console", status_code=307)
