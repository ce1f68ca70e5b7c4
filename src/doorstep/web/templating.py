"""The one Jinja2 environment for every HTML page (console, tracking page, driver app).

* Autoescaping is on for every template (and for templates built from strings).
* Undefined variables raise instead of rendering as empty text: a typo fails the test that
  renders the page rather than shipping a blank. Use ``{% if x is defined %}`` or
  ``x|default(...)`` for optional values.
* Globals: ``static(path)`` (a cache-busting URL under ``/static``), ``leaflet_js`` and
  ``leaflet_css`` (Leaflet served offline from the xstatic package), ``version``.
* Every render also gets ``csrf_token`` (when the app has sessions), ``tiles_url`` and
  ``tiles_attribution`` (the map tiles from the settings) and ``current_path``.

Pages should answer with :func:`render`, which adds the security headers (a strict Content
Security Policy: scripts and styles only from this origin, so page scripts live in
``static/`` files, not inline; images also from the tile server).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from doorstep import __version__
from doorstep.web.csrf import csrf_token

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
STATIC_PREFIX = "/static"
LEAFLET_PREFIX = "/static/leaflet"


def static_url(path: str) -> str:
    """The URL of a file in ``static/``, versioned so browsers refetch it after an upgrade."""
    return f"{STATIC_PREFIX}/{path.lstrip('/')}?v={__version__}"


def _tile_source(tiles_url: str) -> str:
    """The CSP source for the tile server of ``tiles_url`` (``{s}`` subdomains → ``*``)."""
    parts = urlsplit(tiles_url.replace("{s}", "*"))
    if parts.scheme in ("http", "https") and parts.netloc:
        return f"{parts.scheme}://{parts.netloc}"
    return ""


def security_headers(tiles_url: str) -> dict[str, str]:
    """Headers for every HTML page: no framing, no sniffing, no caching, a strict CSP."""
    img = " ".join(s for s in ("'self'", "data:", _tile_source(tiles_url)) if s)
    csp = (
        "default-src 'self'; "
        "script-src 'self'; "
        "style-src 'self'; "
        f"img-src {img}; "
        "connect-src 'self'; "
        "object-src 'none'; "
        "base-uri 'self'; "
        "form-action 'self'; "
        "frame-ancestors 'none'"
    )
    return {
        "Content-Security-Policy": csp,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
    }


def _request_context(request: Request) -> dict[str, Any]:
    context: dict[str, Any] = {"current_path": request.url.path}
    if "session" in request.scope:
        context["csrf_token"] = csrf_token(request)
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is not None:
        context["tiles_url"] = runtime.settings.tiles_url
        context["tiles_attribution"] = runtime.settings.tiles_attribution
    return context


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        static=static_url,
        leaflet_js=f"{LEAFLET_PREFIX}/leaflet.js",
        leaflet_css=f"{LEAFLET_PREFIX}/leaflet.css",
        version=__version__,
    )
    return env


templates = Jinja2Templates(env=_environment(), context_processors=[_request_context])


def render(
    request: Request,
    name: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """Render template ``name`` as an HTML page with the security headers."""
    runtime = getattr(request.app.state, "runtime", None)
    tiles = runtime.settings.tiles_url if runtime is not None else ""
    all_headers = security_headers(tiles)
    all_headers.update(headers or {})
    return templates.TemplateResponse(
        request, name, dict(context or {}), status_code=status_code, headers=all_headers
    )
