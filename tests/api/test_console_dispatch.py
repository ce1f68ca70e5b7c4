"""The dispatcher console over HTTP: the page, planning, publishing, re-planning and moving
stops through its forms, read-only access, the map's GeoJSON and the console's route exports.

The day is the seeded Monaco day of ``tests.factories`` plus three orders the planner cannot
place (too heavy, needing a skill nobody has, a window before every shift), planned with a
search of at most 300 iterations (and 5 s)."""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import gpxpy
import pytest
from fastapi.testclient import TestClient
from httpx import Response

from doorstep.db.engine import transaction
from doorstep.domain.accounts.models import Role
from doorstep.domain.dispatch import resources, views
from doorstep.domain.dispatch.exports import MANIFEST_COLUMNS
from doorstep.domain.dispatch.planning import create_plan
from doorstep.runtime import Runtime
from doorstep.settings import Settings
from doorstep.web.pages.dispatch_view import DASH, PALETTE, ink_for
from doorstep.web.templating import STATIC_DIR
from tests.conftest import TEST_SECRET, MerchantCtx
from tests.console_session import (
    make_user,
    sign_in,
)
from tests.factories import (
    Day,
    local,
    make_depot,
    make_driver,
    make_order,
    make_shift,
    make_vehicle,
    monaco_day,
)

DAY = date(2026, 11, 25)  # the frozen clock's day in Monaco
DISPATCHER = "disp@example.com"
SUPPORT = "support@example.com"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Short searches: capped at 300 iterations, so the plans the assertions read do not
    depend on the machine's load (the 5 s limit, which the button shows, is not reached)."""
    return Settings(
        data_dir=tmp_path / "data",
        secret_key=TEST_SECRET,
        plan_time_limit_s=5.0,
        plan_max_iterations=300,
    )


@dataclass
class Scene:
    merchant: MerchantCtx
    day: Day
    extra: dict[str, str]  # reference -> order id of the three unplannable orders


@pytest.fixture
def scene(runtime: Runtime, merchant: MerchantCtx) -> Scene:
    with transaction(runtime.sessions) as s:
        day = monaco_day(s, merchant.id, DAY)
        window = (local(DAY, 10), local(DAY, 12))
        extra = {
            "HEAVY": make_order(
                s, merchant.id, reference="HEAVY", lat=43.74, lon=7.42, window=window, weight_kg=500
            ).id,
            "COLD": make_order(
                s,
                merchant.id,
                reference="COLD",
                lat=43.741,
                lon=7.421,
                window=window,
                skills=["refrigerated"],
            ).id,
            "EARLY": make_order(
                s,
                merchant.id,
                reference="EARLY",
                lat=43.742,
                lon=7.422,
                window=(local(DAY, 5), local(DAY, 6)),
            ).id,
        }
    return Scene(merchant, day, extra)


def _dispatcher(client: TestClient, runtime: Runtime, scene: Scene) -> str:
    make_user(runtime, scene.merchant.id, DISPATCHER, Role.DISPATCHER)
    return sign_in(client, DISPATCHER)


def _post(client: TestClient, path: str, token: str, **form: str | list[str]) -> Response:
    """POST a console form; answer the page it redirects to (checking the redirect)."""
    answer = client.post(path, data={"csrf_token": token, **form})
    assert answer.status_code == 303, answer.text
    location = answer.headers["location"]
    assert location.startswith("/console/dispatch")
    page: Response = client.get(location)
    assert page.status_code == 200
    return page


def _plan_id(page: Response) -> str:
    """The id of the plan the page shows (from its map data URL)."""
    match = re.search(r'data-geojson-url="/console/dispatch/plans/([^".]+)\.geojson"', page.text)
    assert match, "the page shows no plan"
    return match.group(1)


def _plan_day(client: TestClient, token: str, scene: Scene) -> Response:
    return _post(
        client,
        "/console/dispatch/plan",
        token,
        depot=scene.day.depot_id,
        date=DAY.isoformat(),
    )


def _status(runtime: Runtime, merchant_id: str, plan_id: str) -> str:
    with transaction(runtime.read_sessions) as s:
        return views.load_plan(s, merchant_id, plan_id).status


def test_dispatch_page_needs_a_signed_in_user(client: TestClient) -> None:
    """Anonymous visitors are sent to sign in, and come back to the page afterwards."""
    answer = client.get("/console/dispatch?date=2026-11-25")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/login?next=/console/dispatch%3Fdate%3D2026-11-25"
    assert client.get("/console/dispatch/plans/pln_x.geojson").status_code == 303
    assert client.post("/console/dispatch/plan", data={}).status_code == 303


def test_dispatcher_plans_the_day_and_sees_routes_and_reasons(
    client: TestClient, runtime: Runtime, scene: Scene
) -> None:
    """Today's empty day offers "Plan the day (5 s)"; the form plans a draft and the page
    then shows each route with its driver and stops, and why three orders are left out."""
    token = _dispatcher(client, runtime, scene)
    empty = client.get("/console/dispatch")
    assert empty.status_code == 200
    assert "No plan for this day yet" in empty.text
    assert re.search(r"Plan the day\s*<span class=\"button__note\">\(5 s\)", empty.text)
    assert 'value="2026-11-25"' in empty.text and "Fontvieille" in empty.text
    assert 'href="/console/dispatch" aria-current="page"' in empty.text  # in the navigation

    page = _plan_day(client, token, scene)
    assert 'role="status" id="flash">Planned a draft: 30 stops on 3 routes' in page.text
    assert "3 order(s) could not be planned" in page.text
    assert '<span class="status status--draft">Draft</span>' in page.text
    for name in ("Driver 1", "Driver 2", "Driver 3"):
        assert name in page.text
    assert page.text.count('<details class="route-card') == 3
    assert page.text.count('class="stop__num') == 30
    for reference, reason in (
        ("HEAVY", "Too big for every vehicle"),
        ("COLD", "Needs a skill nobody has"),
        ("EARLY", "Window outside every shift"),
    ):
        assert re.search(
            rf"<strong>{reference}</strong>.*?</button>\s*<span class=\"reason\">{reason}",
            page.text,
        )
    assert "Needs refrigerated; no shift" in page.text
    assert "Shifts not used" not in page.text  # every shift of the day got a route
    assert 'href="/console/dispatch/routes/' in page.text and '.gpx" download>GPX' in page.text
    again = client.get("/console/dispatch")
    assert "Planned a draft" not in again.text  # a flash shows once
    assert _plan_id(again) == _plan_id(page)  # the day's newest plan, without asking
    assert _status(runtime, scene.merchant.id, _plan_id(page)) == "draft"


def test_the_plan_lists_the_shifts_it_could_not_use_and_why(
    client: TestClient, runtime: Runtime, scene: Scene
) -> None:
    """At a depot open 08:00-18:00 on Thursdays, a 06:00-07:30 shift gets no work: the plan's
    summary names its driver, van and hours with the depot's sentence; a deactivated driver's
    shift says so in words; a shift deleted since still shows, by its id."""
    thu = date(2026, 11, 26)
    with transaction(runtime.sessions) as s:
        depot = make_depot(
            s, scene.merchant.id, name="Larvotto", opening_hours={"thu": [["08:00", "18:00"]]}
        )
        shifts: dict[str, str] = {}
        for name, start, end, active in (
            ("Ada", local(thu, 8), local(thu, 16), True),
            ("Early Bird", local(thu, 6), local(thu, 7, 30), True),
            ("Off Sick", local(thu, 9), local(thu, 17), False),
        ):
            shifts[name] = make_shift(
                s,
                scene.merchant.id,
                driver=make_driver(s, scene.merchant.id, name=name, active=active),
                vehicle=make_vehicle(s, scene.merchant.id, name=f"Van of {name}"),
                depot=depot,
                start_at=start,
                end_at=end,
            ).id
        make_order(
            s,
            scene.merchant.id,
            reference="O1",
            lat=43.7405,
            lon=7.4263,
            window=(local(thu, 9), local(thu, 11)),
        )
    token = _dispatcher(client, runtime, scene)
    page = _post(client, "/console/dispatch/plan", token, depot=depot.id, date=thu.isoformat())
    assert "Planned a draft: 1 stop on 1 route" in page.text
    section = page.text[page.text.index('<div class="skipped"') :]
    section = section[: section.index("</ul>")]
    assert re.search(r"<h3[^>]*>Shifts not used <span class=\"count\">2</span></h3>", section)
    early = section[section.index(f'data-shift-id="{shifts["Early Bird"]}"') :]
    assert re.match(
        r'data-shift-id="\w+">\s*<p class="skipped__head">\s*<strong>Early Bird</strong>\s*'
        rf'<span class="skipped__when">06:00{DASH}07:30 · Van of Early Bird</span>\s*</p>\s*'
        r'<p class="skipped__why">The depot is closed then \(opens 08:00\)\.</p>',
        early,
    ), early[:400]
    sick = section[section.index(f'data-shift-id="{shifts["Off Sick"]}"') :]
    assert "<strong>Off Sick</strong>" in sick and "Driver deactivated." in sick
    assert "Ada" not in section  # her shift has the route

    with transaction(runtime.sessions) as s:
        resources.delete_shift(s, scene.merchant.id, shifts["Early Bird"])
    again = client.get(f"/console/dispatch?plan={_plan_id(page)}")
    assert f"<strong>Shift <code>{shifts['Early Bird']}</code></strong>" in again.text
    assert "Shift of Early Bird 06:00-07:30: the depot is closed then (opens 08:00)." in again.text


def test_publish_and_replan_through_the_forms(
    client: TestClient, runtime: Runtime, scene: Scene
) -> None:
    """Publish turns the draft published; Re-plan makes a new draft from it, which the page
    then shows with what changed; publishing that supersedes the first."""
    token = _dispatcher(client, runtime, scene)
    first = _plan_id(_plan_day(client, token, scene))
    back = {"depot": scene.day.depot_id, "date": DAY.isoformat()}
    published = _post(client, f"/console/dispatch/plans/{first}/publish", token, **back)
    assert "Published: the drivers of 3 route(s) now have their stops." in published.text
    assert '<span class="status status--published">Published</span>' in published.text
    assert 'action="/console/dispatch/plans/' + first + '/replan"' in published.text
    assert _status(runtime, scene.merchant.id, first) == "published"

    replanned = _post(
        client,
        f"/console/dispatch/plans/{first}/replan",
        token,
        dropped=[scene.day.shift_ids[2]],
        **back,
    )
    second = _plan_id(replanned)
    assert second != first and "Re-planned from now" in replanned.text
    assert "Against the plan it replaces" in replanned.text
    assert "Plans of the day" in replanned.text
    assert _status(runtime, scene.merchant.id, second) == "draft"

    _post(client, f"/console/dispatch/plans/{second}/publish", token, **back)
    assert _status(runtime, scene.merchant.id, second) == "published"
    assert _status(runtime, scene.merchant.id, first) == "superseded"
    old = client.get(f"/console/dispatch?plan={first}")
    assert "A newer plan replaced this one" in old.text and "Move</summary>" not in old.text


def test_domain_errors_are_shown_on_the_page(
    client: TestClient, runtime: Runtime, scene: Scene
) -> None:
    """A day without shifts, publishing twice and an impossible position are messages on the
    page (after a redirect), not server errors; nothing half-done is kept."""
    token = _dispatcher(client, runtime, scene)
    no_shifts = _post(
        client, "/console/dispatch/plan", token, depot=scene.day.depot_id, date="2026-11-26"
    )
    assert 'role="alert" id="flash">No shifts start on 2026-11-26 at this depot' in no_shifts.text
    plan_id = _plan_id(_plan_day(client, token, scene))
    back = {"depot": scene.day.depot_id, "date": DAY.isoformat()}
    _post(client, f"/console/dispatch/plans/{plan_id}/publish", token, **back)
    twice = _post(client, f"/console/dispatch/plans/{plan_id}/publish", token, **back)
    assert "The plan is published; only a draft can be published." in twice.text

    with transaction(runtime.read_sessions) as s:
        route = views.load_plan(s, scene.merchant.id, plan_id).routes[0]
        route_id, order_id, stops = route.id, route.stops[0].order_id, len(route.stops)
    bad = _post(
        client,
        f"/console/dispatch/plans/{plan_id}/moves",
        token,
        order_id=order_id,
        to_route_id=route_id,
        position="99",
        **back,
    )
    assert "Position 99 is not possible on that route" in bad.text
    with transaction(runtime.read_sessions) as s:
        assert len(views.load_plan(s, scene.merchant.id, plan_id).routes[0].stops) == stops
    junk = _post(
        client,
        f"/console/dispatch/plans/{plan_id}/moves",
        token,
        order_id=order_id,
        to_route_id=route_id,
        position="first",
        **back,
    )
    assert "The position must be a whole number" in junk.text
    unknown = client.get("/console/dispatch?plan=pln_nope&depot=dep_nope&date=someday")
    assert unknown.status_code == 200
    assert "That plan does not exist" in unknown.text and "is not a date" in unknown.text


def test_moving_a_stop_shows_what_it_breaks(
    client: TestClient, runtime: Runtime, scene: Scene
) -> None:
    """Placing the refrigerated order on the first route works, leaves the unassigned list,
    and the route shows the missing skill in red; a plain move reorders the route."""
    token = _dispatcher(client, runtime, scene)
    plan_id = _plan_id(_plan_day(client, token, scene))
    with transaction(runtime.read_sessions) as s:
        routes = views.load_plan(s, scene.merchant.id, plan_id).routes
        first, last = routes[0].id, routes[-1]
        moved_order, moved_ref_count = last.stops[0].order_id, len(last.stops)
    back = {"depot": scene.day.depot_id, "date": DAY.isoformat()}
    page = _post(
        client,
        f"/console/dispatch/plans/{plan_id}/moves",
        token,
        order_id=scene.extra["COLD"],
        to_route_id=first,
        position="1",
        **back,
    )
    text = html.unescape(page.text)
    assert 'class="alert alert--warning" role="alert"' in text
    assert "Moved COLD to Driver 1's route as stop 1. It breaks: " in text
    assert "stop 1 (COLD) needs refrigerated" in text
    assert "route-card route-card--bad" in page.text
    assert '<li class="stop stop--bad" data-order-id="' + scene.extra["COLD"] in page.text
    # No longer in "Not planned".
    assert f'class="unassigned__item" data-order-id="{scene.extra["COLD"]}"' not in page.text

    _post(
        client,
        f"/console/dispatch/plans/{plan_id}/moves",
        token,
        order_id=moved_order,
        to_route_id=last.id,
        position=str(moved_ref_count),
        **back,
    )
    with transaction(runtime.read_sessions) as s:
        stops = views.load_plan(s, scene.merchant.id, plan_id).routes[-1].stops
        assert stops[-1].order_id == moved_order


def test_read_only_roles_see_no_buttons_and_cannot_post(
    client: TestClient, runtime: Runtime, scene: Scene
) -> None:
    """Support may read plans but not change them: it sees the plan without a single form;
    its POSTs are 403 even with a valid token. A role without plans.read (driver) is refused
    the page."""
    view = create_plan(
        runtime.sessions,
        runtime.clock,
        runtime.settings,
        merchant_id=scene.merchant.id,
        depot_id=scene.day.depot_id,
        day=DAY,
    )
    make_user(runtime, scene.merchant.id, SUPPORT, Role.SUPPORT)
    token = sign_in(client, SUPPORT)
    page = client.get("/console/dispatch")
    assert page.status_code == 200 and "Driver 1" in page.text
    assert page.text.count('<details class="route-card') == 3
    assert 'method="post" action="/console/dispatch' not in page.text
    for label in ("Plan the day", "Publish", "Re-plan", "Move</summary>", "Place on a route"):
        assert label not in page.text
    plan_id = view.plan.id
    for path in (
        "/console/dispatch/plan",
        f"/console/dispatch/plans/{plan_id}/publish",
        f"/console/dispatch/plans/{plan_id}/replan",
        f"/console/dispatch/plans/{plan_id}/moves",
    ):
        answer = client.post(path, data={"csrf_token": token, "depot": scene.day.depot_id})
        assert answer.status_code == 403, path
    assert _status(runtime, scene.merchant.id, plan_id) == "draft"

    client.post("/console/logout", data={"csrf_token": token})
    make_user(runtime, scene.merchant.id, "driver@example.com", Role.DRIVER)
    sign_in(client, "driver@example.com")
    assert client.get("/console/dispatch").status_code == 403


def test_forms_need_the_csrf_token(client: TestClient, runtime: Runtime, scene: Scene) -> None:
    """A POST without this session's token changes nothing."""
    _dispatcher(client, runtime, scene)
    answer = client.post(
        "/console/dispatch/plan",
        data={"depot": scene.day.depot_id, "date": DAY.isoformat(), "csrf_token": "forged"},
    )
    assert answer.status_code == 403 and "form expired" in answer.text
    with transaction(runtime.read_sessions) as s:
        assert views.list_plans(s, scene.merchant.id) == []


def test_map_geojson_is_the_users_merchants_plan_only(
    client: TestClient,
    runtime: Runtime,
    scene: Scene,
    make_merchant: Callable[..., MerchantCtx],
) -> None:
    """The map data is the plan's FeatureCollection with colours and local times; another
    merchant's user gets 404 for it and for its routes' exports."""
    token = _dispatcher(client, runtime, scene)
    plan_id = _plan_id(_plan_day(client, token, scene))
    answer = client.get(f"/console/dispatch/plans/{plan_id}.geojson")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/geo+json"
    features = answer.json()["features"]
    kinds = [f["properties"]["kind"] for f in features]
    assert kinds.count("depot") == 1 and kinds.count("route") == 3 and kinds.count("stop") == 30
    lines = [f["properties"] for f in features if f["properties"]["kind"] == "route"]
    assert [p["colour"] for p in lines] == list(PALETTE[:3])
    stop = next(f for f in features if f["properties"]["kind"] == "stop")
    props = stop["properties"]
    assert props["recipient"] == "Recipient"  # the first name only
    assert re.fullmatch(r"\d\d:\d\d", props["arrival"])
    assert re.fullmatch(rf"\d\d:\d\d{DASH}\d\d:\d\d", props["window"])
    assert props["driver"].startswith("Driver ") and props["number"] in (1, 2, 3)
    lon, lat = stop["geometry"]["coordinates"]
    assert 7.4 < lon < 7.45 and 43.72 < lat < 43.76  # RFC 7946 order: lon, lat
    route_id = lines[0]["route_id"]

    other = make_merchant(name="Menton Pharmacy")
    client.post("/console/logout", data={"csrf_token": token})
    make_user(runtime, other.id, "other@example.com", Role.OWNER)
    sign_in(client, "other@example.com")
    assert client.get(f"/console/dispatch/plans/{plan_id}.geojson").status_code == 404
    for ext in ("gpx", "csv", "geojson"):
        assert client.get(f"/console/dispatch/routes/{route_id}.{ext}").status_code == 404
    page = client.get(f"/console/dispatch?plan={plan_id}")
    assert "That plan does not exist" in page.text and "Driver 1" not in page.text


def test_console_route_exports(client: TestClient, runtime: Runtime, scene: Scene) -> None:
    """GPX, CSV manifest and GeoJSON of a route download with the session (no API key)."""
    token = _dispatcher(client, runtime, scene)
    plan_id = _plan_id(_plan_day(client, token, scene))
    with transaction(runtime.read_sessions) as s:
        route = next(r for r in views.load_plan(s, scene.merchant.id, plan_id).routes if r.stops)
        route_id, references = route.id, [st.order_id for st in route.stops]
    gpx_answer = client.get(f"/console/dispatch/routes/{route_id}.gpx")
    assert gpx_answer.status_code == 200
    assert gpx_answer.headers["content-type"].startswith("application/gpx+xml")
    assert f'filename="route-{route_id}.gpx"' in gpx_answer.headers["content-disposition"]
    gpx = gpxpy.parse(gpx_answer.text)
    assert len(gpx.waypoints) == len(references) + 1  # the depot, then each stop

    csv_answer = client.get(f"/console/dispatch/routes/{route_id}.csv")
    assert csv_answer.status_code == 200
    assert csv_answer.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(csv_answer.content.decode("utf-8-sig"))))
    assert rows[0] == MANIFEST_COLUMNS and len(rows) == len(references) + 1
    column = MANIFEST_COLUMNS.index("stop")
    assert [r[column] for r in rows[1:]] == [str(i) for i in range(1, len(references) + 1)]

    geo = client.get(f"/console/dispatch/routes/{route_id}.geojson")
    assert geo.status_code == 200 and geo.json()["type"] == "FeatureCollection"


def test_route_colours_match_the_stylesheet_and_read_well() -> None:
    """Every palette colour has its ``route-cN`` class in dispatch.css with the same colour
    and ink, and the ink contrasts at least 4.5:1 (WCAG AA) with it."""
    css = (STATIC_DIR / "dispatch.css").read_text()
    found = {
        int(n): (colour.upper(), ink.lower())
        for n, colour, ink in re.findall(
            r"\.route-c(\d+) \{ --route: (#[0-9A-Fa-f]{6}); --route-ink: (#[0-9a-f]{6}); \}", css
        )
    }
    assert found == {i: (c.upper(), ink_for(c)) for i, c in enumerate(PALETTE)}

    def luminance(hex_colour: str) -> float:
        rgb = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    for colour in PALETTE:
        a, b = sorted((luminance(colour), luminance(ink_for(colour))))
        assert (b + 0.05) / (a + 0.05) >= 4.5, colour


def test_page_query_parameters_choose_depot_and_day(
    client: TestClient, runtime: Runtime, scene: Scene
) -> None:
    """The pickers' GET form: another day shows that day (empty here) with links to the days
    around it; the page's URL keeps depot and day."""
    _dispatcher(client, runtime, scene)
    page = client.get(f"/console/dispatch?depot={scene.day.depot_id}&date=2026-11-27")
    assert page.status_code == 200
    assert "Friday 27 November 2026" in page.text and "No plan for this day yet" in page.text
    links = re.findall(r'href="(/console/dispatch\?[^"]+)"', page.text)
    days = {parse_qs(urlsplit(link.replace("&amp;", "&")).query)["date"][0] for link in links}
    assert {"2026-11-26", "2026-11-25", "2026-11-28"} <= days
