"""The console's home page, and :func:`render_console`, which every console page uses to
render a template with the signed-in user and the navigation their role allows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from fastapi.routing import iter_route_contexts

from doorstep.domain.accounts.models import Role
from doorstep.domain.accounts.users import Action
from doorstep.web.pages.auth import ConsoleUser
from doorstep.web.pages.calls import console_page
from doorstep.web.templating import render

router = APIRouter(prefix="/console", include_in_schema=False)

ROLE_SUMMARIES: dict[Role, str] = {  # completes "... with the role X, which gives ..."
    Role.OWNER: "access to everything, including users, API keys and settings",
    Role.DISPATCHER: "access to plans, orders and drivers",
    Role.SUPPORT: "read access to orders, and access to support cases",
    Role.DRIVER: "access to your own route",
}


@dataclass(frozen=True)
class Section:
    """A console area: shown to roles that may do ``action``, linked once its page exists."""

    label: str
    path: str
    action: Action
    summary: str


SECTIONS: tuple[Section, ...] = (
    Section("Dispatch", "/console/dispatch", Action.PLANS_READ, "Today's plan on a map."),
    Section("Orders", "/console/orders", Action.ORDERS_READ, "Find, change and import orders."),
    Section("Drivers", "/console/drivers", Action.DRIVERS_MANAGE, "Drivers, vehicles, shifts."),
    Section(
        "Delivery options",
        "/console/slots",
        Action.PLANS_WRITE,
        "Zones, slot calendars, pickup points; how full each window is.",
    ),
    Section("Cases", "/console/cases", Action.CASES_READ, "Complaints and bad ratings."),
    Section(
        "Analytics",
        "/console/analytics",
        Action.ANALYTICS_READ,
        "On-time and first-attempt rates, ETA accuracy, messages; by day, driver, zone.",
    ),
    Section("Users", "/console/users", Action.USERS_MANAGE, "Who can use this console."),
    Section("Settings", "/console/settings", Action.SETTINGS_MANAGE, "Branding and defaults."),
    Section(
        "Messages",
        "/console/messages",
        Action.SETTINGS_MANAGE,
        "What recipients receive: templates per trigger, channel and language, with a preview.",
    ),
    Section("My route", "/driver", Action.OWN_ROUTE, "Your stops in order."),
    Section("API reference", "/docs", Action.API_KEYS_MANAGE, "The JSON API, interactive."),
)


@dataclass(frozen=True)
class NavItem:
    label: str
    path: str
    summary: str
    available: bool  # False until the page is built: listed, not linked


def _served_paths(request: Request) -> set[str]:
    # Included routers nest in app.routes; iter_route_contexts flattens them.
    contexts = iter_route_contexts(request.app.routes)
    return {path for ctx in contexts if (path := getattr(ctx, "path", None))}


def console_nav(request: Request, me: ConsoleUser) -> list[NavItem]:
    """The sections ``me`` may use, marking which ones this server already serves."""
    served = _served_paths(request)
    return [
        NavItem(s.label, s.path, s.summary, s.path in served) for s in SECTIONS if me.can(s.action)
    ]


def render_console(
    request: Request,
    me: ConsoleUser,
    name: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> Response:
    """Render a console page (a template extending ``base.html``) for ``me``."""
    full = {"me": me, "nav": console_nav(request, me), **(context or {})}
    return render(request, name, full, status_code=status_code)


@router.get("", name="console_home")
@console_page()
def console_home(request: Request, me: ConsoleUser) -> Response:
    """The signed-in user's start page: their merchant, role and sections."""
    return render_console(
        request, me, "console/home.html", {"role_summary": ROLE_SUMMARIES[me.role]}
    )
