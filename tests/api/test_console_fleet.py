"""The console's fleet pages over HTTP: drivers, vehicles, depots and shifts created, edited,
deactivated (or dropped) and deleted through their forms; the domain's objections shown beside
the fields with the typed values kept; conflicts (a device id taken, overlapping shifts, a
delete refused while in use); CSRF, tenancy (404) and roles (403).

Each form handler is checked one Post/Redirect/Get step at a time (the client does not follow
redirects); what was saved is read back through the dispatch domain's verbs."""

# The pages write ranges with an en dash, so the expected texts do too.
# ruff: noqa: RUF001

from __future__ import annotations

import html
import re
from datetime import UTC, date, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from doorstep.db.engine import transaction
from doorstep.domain.accounts.models import Role
from doorstep.domain.dispatch import resources
from doorstep.domain.dispatch.models import Depot, Driver, Shift, Vehicle
from doorstep.domain.dispatch.schemas import DepotIn, DriverIn, ShiftIn, VehicleIn
from doorstep.runtime import Runtime
from doorstep.web.pages.fleet_forms import FormInvalid, depot_in, shift_in
from doorstep.web.pages.fleet_view import hours_summary
from tests.conftest import MerchantCtx
from tests.console_session import (
    make_user,
    sign_in,
)
from tests.factories import MONACO, local

DISPATCHER = "disp@example.com"
DAY = date(2026, 11, 25)  # the frozen clock's day in Monaco
PAGE = "/console/drivers"


# --- Helpers --------------------------------------------------------------------------------


@pytest.fixture
def token(client: TestClient, runtime: Runtime, merchant: MerchantCtx) -> str:
    """A signed-in dispatcher's CSRF token."""
    make_user(runtime, merchant.id, DISPATCHER, Role.DISPATCHER)
    return sign_in(client, DISPATCHER)


def _post(client: TestClient, url: str, token: str, **data: str) -> Response:
    return client.post(url, data={"csrf_token": token, **data})


def _follow(client: TestClient, answer: Response) -> Response:
    """The page a 303 leads to (the flash message is shown once)."""
    assert answer.status_code == 303, answer.text
    return client.get(answer.headers["location"].partition("#")[0])


def _text(page: Response) -> str:
    """The page's text without tags, entities decoded and spaces collapsed."""
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page.text)).split())
    return text.replace(" ,", ",").replace(" .", ".")


def _field_error(page: Response, name: str) -> str:
    match = re.search(rf'<p class="field__error" id="f-{name}-error">([^<]*)</p>', page.text)
    assert match, f"no error shown for {name}"
    return html.unescape(match.group(1))


def _value(page: Response, name: str) -> str:
    match = re.search(
        rf'<input id="f-{name}" name="{name}" type="[^"]+" value="([^"]*)"', page.text
    )
    assert match, f"no input {name}"
    return html.unescape(match.group(1))


def _read(runtime: Runtime, fn: Any, *args: Any) -> Any:
    with transaction(runtime.read_sessions) as s:
        obj = fn(s, *args)
        s.expunge_all()
        return obj


def _drivers(runtime: Runtime, merchant_id: str) -> list[Driver]:
    return list(_read(runtime, resources.list_drivers, merchant_id)[0])


def _new_id(answer: Response) -> str:
    """The id of the row a create or save redirects to."""
    assert answer.status_code == 303, answer.text
    return answer.headers["location"].partition("#row-")[2]


DRIVER = {"name": "Ada Lovelace", "phone": "+33 6 12 34 56 78", "device_id": "ada-phone"}
VEHICLE = {
    "name": "Van 1",
    "profile": "van",
    "capacity_weight_kg": "800",
    "capacity_parcels": "60",
    "skills": "Refrigerated, heavy_lift",
}
DEPOT = {
    "name": "Fontvieille",
    "line1": "6 Quai Antoine Ier",
    "postal_code": "98000",
    "city": "Monaco",
    "country": "mc",
    "lat": "43.7285",
    "lon": "7.415",
    "hours_mon": "08:00–12:00, 14:00-18:00",
    "hours_sat": "9 to 12",
}


@pytest.fixture
def fleet(runtime: Runtime, merchant: MerchantCtx) -> dict[str, str]:
    """A driver, a vehicle and a depot, made through the domain: their ids."""
    with transaction(runtime.sessions) as s:
        clock = runtime.clock
        driver = resources.create_driver(s, clock, merchant.id, DriverIn(name="Bea Driver"))
        vehicle = resources.create_vehicle(
            s,
            clock,
            merchant.id,
            VehicleIn(name="Cargo 2", capacity_weight_kg=100, capacity_parcels=20),
        )
        depot = resources.create_depot(
            s,
            clock,
            merchant.id,
            DepotIn.model_validate(
                {
                    "name": "Port",
                    "address": {
                        "line1": "Quai",
                        "city": "Monaco",
                        "country": "MC",
                        "lat": 43.73,
                        "lon": 7.42,
                    },
                }
            ),
        )
        return {"driver_id": driver.id, "vehicle_id": vehicle.id, "depot_id": depot.id}


def _shift_form(fleet: dict[str, str], **changes: str) -> dict[str, str]:
    return {
        **fleet,
        "start_at": "2026-11-25T08:00",
        "end_at": "2026-11-25T16:00",
        "break_earliest": "12:00",
        "break_latest": "13:00",
        "break_minutes": "30",
        "return_to_depot": "1",
        "date": DAY.isoformat(),
        **changes,
    }


# --- The pages ------------------------------------------------------------------------------


def test_every_tab_is_a_link_and_the_console_links_the_section(
    client: TestClient, token: str
) -> None:
    home = client.get("/console")
    assert 'href="/console/drivers"' in home.text
    for url, heading, new in (
        (PAGE, "Drivers", "New driver"),
        (f"{PAGE}/vehicles", "Vehicles", "New vehicle"),
        (f"{PAGE}/depots", "Depots", "New depot"),
        (f"{PAGE}/shifts", "Shifts on Wednesday 25 November 2026", "New shift"),
    ):
        page = client.get(url)
        assert page.status_code == 200, page.text
        text = _text(page)
        assert heading in text and new in text
        assert f'href="{url}" aria-current="page"' in page.text
        for tab in (
            "/console/drivers/vehicles",
            "/console/drivers/depots",
            "/console/drivers/shifts",
        ):
            assert f'href="{tab}"' in page.text
    assert client.get(f"{PAGE}/planes").status_code == 404


def test_the_shift_form_waits_for_a_driver_a_vehicle_and_a_depot(
    client: TestClient, token: str
) -> None:
    page = client.get(f"{PAGE}/shifts")
    assert "A shift needs an active driver, an active vehicle and a depot" in _text(page)
    assert 'action="/console/drivers/shifts/new"' not in page.text


# --- Drivers --------------------------------------------------------------------------------


def test_driver_create_edit_deactivate_delete(
    client: TestClient, token: str, runtime: Runtime, merchant: MerchantCtx
) -> None:
    answer = _post(client, f"{PAGE}/drivers/new", token, **DRIVER, skills="Heavy_lift")
    driver_id = _new_id(answer)
    assert answer.headers["location"] == f"{PAGE}#row-{driver_id}"
    page = _follow(client, answer)
    assert "Added Ada Lovelace." in _text(page)
    assert "+33612345678" in page.text and "ada-phone" in page.text
    (driver,) = _drivers(runtime, merchant.id)
    assert (driver.phone, driver.device_id, driver.skills) == (
        "+33612345678",
        "ada-phone",
        ["heavy_lift"],
    )

    edit = client.get(f"{PAGE}/drivers/{driver_id}")
    assert edit.status_code == 200
    assert _value(edit, "phone") == "+33612345678" and _value(edit, "skills") == "heavy_lift"
    assert "The id your OsmAnd/Traccar app sends, or your OwnTracks tid." in _text(edit)

    saved = _post(
        client,
        f"{PAGE}/drivers/{driver_id}",
        token,
        name="Ada King",
        phone="",
        device_id="ada-2",
        skills="",
    )
    assert "Saved Ada King." in _text(_follow(client, saved))
    (driver,) = _drivers(runtime, merchant.id)
    assert (driver.name, driver.phone, driver.device_id, driver.skills) == (
        "Ada King",
        None,
        "ada-2",
        [],
    )

    off = _post(client, f"{PAGE}/drivers/{driver_id}/deactivate", token)
    assert "Ada King is deactivated" in _text(_follow(client, off))
    assert _drivers(runtime, merchant.id)[0].active is False
    assert "Activate driver" in client.get(f"{PAGE}/drivers/{driver_id}").text
    on = _post(client, f"{PAGE}/drivers/{driver_id}/activate", token)
    assert "Ada King is active again." in _text(_follow(client, on))
    assert _drivers(runtime, merchant.id)[0].active is True

    gone = _post(client, f"{PAGE}/drivers/{driver_id}/delete", token)
    assert gone.headers["location"] == PAGE
    assert "Deleted Ada King." in _text(_follow(client, gone))
    assert _drivers(runtime, merchant.id) == []


def test_driver_errors_are_shown_beside_the_fields_with_the_typed_values(
    client: TestClient, token: str, runtime: Runtime, merchant: MerchantCtx
) -> None:
    page = _post(
        client,
        f"{PAGE}/drivers/new",
        token,
        name="Ada",
        phone="12",
        device_id="has space",
        skills="ok, Bad Skill!",
    )
    assert page.status_code == 422
    assert "E.164" in _field_error(page, "phone")
    assert "without spaces" in _field_error(page, "device_id")
    assert "Bad Skill!" in _field_error(page, "skills")
    assert (_value(page, "name"), _value(page, "phone"), _value(page, "device_id")) == (
        "Ada",
        "12",
        "has space",
    )
    assert (
        'aria-invalid="true"' in page.text
        and "Please correct the 3 fields marked below." in _text(page)
    )

    page = _post(client, f"{PAGE}/drivers/new", token, name="", phone="+3361234")
    assert _field_error(page, "name") == "Required."
    assert _field_error(page, "phone") == "Not a valid phone number."
    assert _drivers(runtime, merchant.id) == []

    created = _post(client, f"{PAGE}/drivers/new", token, name="Ada")
    driver_id = _new_id(created)
    page = _post(client, f"{PAGE}/drivers/{driver_id}", token, name="", phone="+3361234")
    assert page.status_code == 422 and _field_error(page, "name") == "Required."
    assert 'action="/console/drivers/drivers/' + driver_id + '"' in page.text
    assert _drivers(runtime, merchant.id)[0].name == "Ada"


def test_a_device_id_already_registered_is_a_conflict_shown_on_the_form(
    client: TestClient, token: str, runtime: Runtime, make_merchant: Any
) -> None:
    other = make_merchant(name="Other shop")
    with transaction(runtime.sessions) as s:
        resources.create_driver(
            s, runtime.clock, other.id, DriverIn(name="Zed", device_id="shared-id")
        )
    page = _post(client, f"{PAGE}/drivers/new", token, name="Ada", device_id="shared-id")
    assert page.status_code == 409
    assert "Device id 'shared-id' is already registered to a driver." in _text(page)
    assert _value(page, "device_id") == "shared-id"

    driver_id = _new_id(_post(client, f"{PAGE}/drivers/new", token, name="Ada", device_id="mine"))
    page = _post(client, f"{PAGE}/drivers/{driver_id}", token, name="Ada", device_id="shared-id")
    assert page.status_code == 409 and "already registered" in _text(page)


# --- Vehicles -------------------------------------------------------------------------------


def test_vehicle_create_edit_deactivate_delete(
    client: TestClient, token: str, runtime: Runtime, merchant: MerchantCtx
) -> None:
    answer = _post(client, f"{PAGE}/vehicles/new", token, **VEHICLE)
    vehicle_id = _new_id(answer)
    page = _follow(client, answer)
    assert "Added Van 1." in _text(page)
    assert "800 kg · 60 parcels" in _text(page) and "heavy lift" in _text(page)
    vehicle = _read(runtime, resources.access_vehicle, merchant.id, vehicle_id)
    assert (vehicle.capacity_weight_kg, vehicle.capacity_parcels) == (800, 60)
    assert vehicle.skills == ["heavy_lift", "refrigerated"]

    edit = client.get(f"{PAGE}/vehicles/{vehicle_id}")
    assert _value(edit, "capacity_weight_kg") == "800"
    assert '<option value="van" selected>Van</option>' in edit.text
    changed = {**VEHICLE, "profile": "cargo_bike", "capacity_weight_kg": "120.5", "skills": ""}
    assert "Saved Van 1." in _text(
        _follow(client, _post(client, f"{PAGE}/vehicles/{vehicle_id}", token, **changed))
    )
    vehicle = _read(runtime, resources.access_vehicle, merchant.id, vehicle_id)
    assert (vehicle.profile, vehicle.capacity_weight_kg, vehicle.skills) == (
        "cargo_bike",
        120.5,
        [],
    )

    assert (
        _follow(
            client, _post(client, f"{PAGE}/vehicles/{vehicle_id}/deactivate", token)
        ).status_code
        == 200
    )
    assert _read(runtime, resources.access_vehicle, merchant.id, vehicle_id).active is False
    assert "Inactive" in _text(client.get(f"{PAGE}/vehicles"))
    _post(client, f"{PAGE}/vehicles/{vehicle_id}/activate", token)
    assert _read(runtime, resources.access_vehicle, merchant.id, vehicle_id).active is True

    assert "Deleted Van 1." in _text(
        _follow(client, _post(client, f"{PAGE}/vehicles/{vehicle_id}/delete", token))
    )
    assert _read(runtime, resources.list_vehicles, merchant.id)[0] == []


def test_vehicle_errors_keep_the_typed_values(client: TestClient, token: str) -> None:
    bad = {**VEHICLE, "profile": "rocket", "capacity_weight_kg": "-5", "capacity_parcels": "many"}
    page = _post(client, f"{PAGE}/vehicles/new", token, **bad)
    assert page.status_code == 422
    assert _field_error(page, "profile") == "Choose one of the list."
    assert _field_error(page, "capacity_weight_kg") == "Must be greater than 0."
    assert _field_error(page, "capacity_parcels") == "Enter a whole number."
    assert (_value(page, "capacity_weight_kg"), _value(page, "capacity_parcels")) == ("-5", "many")
    page = _post(client, f"{PAGE}/vehicles/new", token, name="Van", capacity_weight_kg="")
    assert _field_error(page, "capacity_weight_kg") == "Required."


# --- Depots ---------------------------------------------------------------------------------


def test_depot_create_edit_delete_with_opening_hours(
    client: TestClient, token: str, runtime: Runtime, merchant: MerchantCtx
) -> None:
    answer = _post(client, f"{PAGE}/depots/new", token, **DEPOT)
    depot_id = _new_id(answer)
    page = _follow(client, answer)
    assert "Added Fontvieille." in _text(page)
    assert "Mon 08:00–12:00, 14:00–18:00" in _text(page) and "Sat 09:00–12:00" in _text(page)
    depot = _read(runtime, resources.access_depot, merchant.id, depot_id)
    assert depot.opening_hours == {
        "mon": [["08:00", "12:00"], ["14:00", "18:00"]],
        "sat": [["09:00", "12:00"]],
    }
    assert (depot.country, depot.lat, depot.lon, depot.postal_code) == (
        "MC",
        43.7285,
        7.415,
        "98000",
    )

    edit = client.get(f"{PAGE}/depots/{depot_id}")
    assert (
        _value(edit, "hours_mon") == "08:00–12:00, 14:00–18:00" and _value(edit, "hours_tue") == ""
    )
    week = {f"hours_{d}": "7:30-19" for d in ("mon", "tue", "wed", "thu", "fri")}
    changed = {**DEPOT, **week, "hours_sat": "", "postal_code": "", "name": "Fontvieille hub"}
    assert "Saved Fontvieille hub." in _text(
        _follow(client, _post(client, f"{PAGE}/depots/{depot_id}", token, **changed))
    )
    depot = _read(runtime, resources.access_depot, merchant.id, depot_id)
    assert depot.opening_hours == {
        d: [["07:30", "19:00"]] for d in ("mon", "tue", "wed", "thu", "fri")
    }
    assert depot.postal_code is None
    assert "Mon–Fri 07:30–19:00" in _text(client.get(f"{PAGE}/depots"))

    assert "Deleted Fontvieille hub." in _text(
        _follow(client, _post(client, f"{PAGE}/depots/{depot_id}/delete", token))
    )
    assert _read(runtime, resources.list_depots, merchant.id)[0] == []


def test_depot_errors_are_shown_per_day_and_per_field(client: TestClient, token: str) -> None:
    bad = {
        **DEPOT,
        "country": "Monaco",
        "lat": "95",
        "lon": "east",
        "hours_mon": "08:00-25:00",
        "hours_tue": "mornings",
    }
    page = _post(client, f"{PAGE}/depots/new", token, **bad)
    assert page.status_code == 422
    assert "two-letter country code" in _field_error(page, "country")
    assert _field_error(page, "lat") == "Must be less than or equal to 90."
    assert _field_error(page, "lon") == "Enter a number."
    assert "is not HH:MM-HH:MM" in _field_error(page, "hours_mon")
    assert _field_error(page, "hours_tue") == "Write each range as 08:00–18:00."
    assert (_value(page, "hours_tue"), _value(page, "country")) == ("mornings", "Monaco")
    page = _post(client, f"{PAGE}/depots/new", token, **{**DEPOT, "hours_wed": "14-18, 08-15"})
    assert _field_error(page, "hours_wed") == "08:00-15:00 overlaps 14:00-18:00."


# --- Shifts ---------------------------------------------------------------------------------


def test_shift_create_edit_drop_delete_in_the_merchants_timezone(
    client: TestClient, token: str, runtime: Runtime, merchant: MerchantCtx, fleet: dict[str, str]
) -> None:
    page = client.get(f"{PAGE}/shifts")
    assert "Shifts on Wednesday 25 November 2026" in _text(page)
    assert 'href="/console/drivers/shifts?date=2026-11-24"' in page.text
    assert 'href="/console/drivers/shifts?date=2026-11-26"' in page.text
    assert _value(page, "start_at") == "2026-11-25T08:00"

    answer = _post(client, f"{PAGE}/shifts/new", token, **_shift_form(fleet))
    shift_id = _new_id(answer)
    assert answer.headers["location"] == f"{PAGE}/shifts?date=2026-11-25#row-{shift_id}"
    page = _follow(client, answer)
    text = _text(page)
    assert "Added Bea Driver's shift of Wednesday 25 November 2026 at 08:00." in text
    assert "08:00–16:00" in text and "30 min starts 12:00–13:00" in text and "Cargo 2" in text
    shift = _read(runtime, resources.access_shift, merchant.id, shift_id)
    assert shift.start_at == local(DAY, 8) and shift.end_at == local(DAY, 16)
    assert shift.start_at.astimezone(UTC) == datetime(2026, 11, 25, 7, tzinfo=UTC)
    assert (shift.break_earliest_at, shift.break_latest_at) == (local(DAY, 12), local(DAY, 13))
    assert shift.break_duration_s == 1800 and shift.return_to_depot is True
    assert "No shifts start on this day" in _text(client.get(f"{PAGE}/shifts?date=2026-11-26"))

    edit = client.get(f"{PAGE}/shifts/{shift_id}")
    assert (_value(edit, "end_at"), _value(edit, "break_minutes")) == ("2026-11-25T16:00", "30")
    form = _shift_form(
        fleet, end_at="2026-11-25T17:30", break_earliest="", break_latest="", break_minutes=""
    )
    del form["return_to_depot"]
    assert "Saved" in _text(
        _follow(client, _post(client, f"{PAGE}/shifts/{shift_id}", token, **form))
    )
    shift = _read(runtime, resources.access_shift, merchant.id, shift_id)
    assert shift.end_at == local(DAY, 17, 30) and shift.break_duration_s is None
    assert shift.return_to_depot is False

    dropped = _post(client, f"{PAGE}/shifts/{shift_id}/drop", token)
    assert "is dropped" in _text(_follow(client, dropped))
    assert _read(runtime, resources.access_shift, merchant.id, shift_id).status == "dropped"
    _post(client, f"{PAGE}/shifts/{shift_id}/restore", token)
    assert _read(runtime, resources.access_shift, merchant.id, shift_id).status == "planned"

    gone = _post(client, f"{PAGE}/shifts/{shift_id}/delete", token)
    assert gone.headers["location"] == f"{PAGE}/shifts?date=2026-11-25"
    assert "Deleted Bea Driver's shift" in _text(_follow(client, gone))
    assert _read(runtime, resources.list_shifts, merchant.id)[0] == []


def test_shift_errors_and_overlaps(
    client: TestClient, token: str, runtime: Runtime, merchant: MerchantCtx, fleet: dict[str, str]
) -> None:
    page = _post(
        client, f"{PAGE}/shifts/new", token, **_shift_form(fleet, end_at="2026-11-25T07:00")
    )
    assert page.status_code == 422
    assert _field_error(page, "end_at") == "Must be after the start."
    assert _value(page, "end_at") == "2026-11-25T07:00" and _value(page, "break_minutes") == "30"
    assert f'<option value="{fleet["driver_id"]}" selected>' in page.text

    page = _post(
        client,
        f"{PAGE}/shifts/new",
        token,
        **_shift_form(fleet, break_earliest="06:00", break_minutes="300", start_at="soon"),
    )
    assert _field_error(page, "start_at").startswith("Enter a date and a time")
    page = _post(
        client,
        f"{PAGE}/shifts/new",
        token,
        **_shift_form(fleet, break_minutes="300"),
    )
    assert _field_error(page, "break_minutes") == "At most 240 minutes."
    page = _post(client, f"{PAGE}/shifts/new", token, **_shift_form(fleet, break_earliest="06:00"))
    assert _field_error(page, "break_earliest") == "Must be within the shift."
    page = _post(
        client, f"{PAGE}/shifts/new", token, **_shift_form(fleet, driver_id="", break_latest="")
    )
    assert _field_error(page, "driver_id") == "Required."
    assert _field_error(page, "break_latest") == "Required."

    first = _new_id(_post(client, f"{PAGE}/shifts/new", token, **_shift_form(fleet)))
    page = _post(
        client,
        f"{PAGE}/shifts/new",
        token,
        **_shift_form(
            fleet,
            start_at="2026-11-25T15:00",
            end_at="2026-11-25T20:00",
            break_earliest="",
            break_latest="",
            break_minutes="",
        ),
    )
    assert page.status_code == 409
    assert f"The driver already has shift {first} at that time." in _text(page)
    assert f'href="/console/drivers/shifts/{first}">Open that shift</a>' in page.text
    assert _value(page, "start_at") == "2026-11-25T15:00"
    assert len(_read(runtime, resources.list_shifts, merchant.id)[0]) == 1


def test_shifts_day_is_today_in_the_merchants_timezone(
    client: TestClient, runtime: Runtime, make_merchant: Any
) -> None:
    """07:00 UTC on the 25th is still the 24th in Los Angeles; typed times are Pacific."""
    west = make_merchant(name="West Coast", timezone="America/Los_Angeles")
    make_user(runtime, west.id, "la@example.com", Role.OWNER)
    token = sign_in(client, "la@example.com")
    assert "Shifts on Tuesday 24 November 2026" in _text(client.get(f"{PAGE}/shifts"))
    with transaction(runtime.sessions) as s:
        d = resources.create_driver(s, runtime.clock, west.id, DriverIn(name="Lou"))
        v = resources.create_vehicle(
            s, runtime.clock, west.id, VehicleIn(name="V", capacity_weight_kg=1, capacity_parcels=1)
        )
        p = resources.create_depot(
            s,
            runtime.clock,
            west.id,
            DepotIn.model_validate(
                {
                    "name": "D",
                    "address": {
                        "line1": "1 Main",
                        "city": "LA",
                        "country": "US",
                        "lat": 34,
                        "lon": -118,
                    },
                }
            ),
        )
        ids = {"driver_id": d.id, "vehicle_id": v.id, "depot_id": p.id}
    form = _shift_form(
        ids,
        start_at="2026-11-24T22:00",
        end_at="2026-11-25T06:00",
        break_earliest="01:00",
        break_latest="02:00",
    )
    answer = _post(client, f"{PAGE}/shifts/new", token, **form)
    shift = _read(runtime, resources.access_shift, west.id, _new_id(answer))
    assert shift.start_at == datetime(2026, 11, 25, 6, tzinfo=UTC)
    assert shift.break_earliest_at == datetime(2026, 11, 25, 9, tzinfo=UTC)  # 01:00 the next day
    page = _follow(client, answer)
    assert "22:00–06:00" in _text(page) and "ends next day" in _text(page)


# --- Deletes refused while in use -----------------------------------------------------------


def test_deletes_refused_while_in_use_say_why(
    client: TestClient, token: str, runtime: Runtime, merchant: MerchantCtx, fleet: dict[str, str]
) -> None:
    _new_id(_post(client, f"{PAGE}/shifts/new", token, **_shift_form(fleet)))
    for kind, key, reason in (
        (
            "depots",
            "depot_id",
            "Port was not deleted. The depot has 1 shift(s); delete or move them first.",
        ),
        (
            "drivers",
            "driver_id",
            "Bea Driver was not deleted. The driver has 1 shift(s); "
            "delete them or deactivate the driver.",
        ),
        (
            "vehicles",
            "vehicle_id",
            "Cargo 2 was not deleted. The vehicle has 1 shift(s); delete them or deactivate it.",
        ),
    ):
        refused = _post(client, f"{PAGE}/{kind}/{fleet[key]}/delete", token)
        assert refused.headers["location"] == f"{PAGE}/{kind}/{fleet[key]}"
        page = _follow(client, refused)
        assert reason in _text(page) and 'role="alert" id="flash"' in page.text
    assert len(_read(runtime, resources.list_drivers, merchant.id)[0]) == 1


def test_a_deactivated_driver_cannot_take_a_new_shift(
    client: TestClient, token: str, fleet: dict[str, str]
) -> None:
    _post(client, f"{PAGE}/drivers/{fleet['driver_id']}/deactivate", token)
    page = client.get(f"{PAGE}/shifts")
    assert "A shift needs an active driver" in _text(page)
    page = _post(client, f"{PAGE}/shifts/new", token, **_shift_form(fleet))
    assert (
        page.status_code == 422 and _field_error(page, "driver_id") == "The driver is deactivated."
    )


# --- CSRF, tenancy and roles ----------------------------------------------------------------


def test_forms_without_the_csrf_token_are_refused(
    client: TestClient, token: str, runtime: Runtime, merchant: MerchantCtx, fleet: dict[str, str]
) -> None:
    driver = fleet["driver_id"]
    for url in (
        f"{PAGE}/drivers/new",
        f"{PAGE}/drivers/{driver}",
        f"{PAGE}/drivers/{driver}/deactivate",
        f"{PAGE}/drivers/{driver}/delete",
    ):
        for data in ({"name": "Mallory"}, {"name": "Mallory", "csrf_token": "forged"}):
            answer = client.post(url, data=data)
            assert answer.status_code == 403, url
            assert "the form expired" in _text(answer)
    (only,) = _drivers(runtime, merchant.id)
    assert (only.name, only.active) == ("Bea Driver", True)


def test_another_merchants_objects_are_not_found(
    client: TestClient, token: str, runtime: Runtime, make_merchant: Any
) -> None:
    other = make_merchant(name="Other shop")
    with transaction(runtime.sessions) as s:
        driver = resources.create_driver(s, runtime.clock, other.id, DriverIn(name="Zed"))
        shift_owner = resources.create_vehicle(
            s,
            runtime.clock,
            other.id,
            VehicleIn(name="Z", capacity_weight_kg=1, capacity_parcels=1),
        )
        ids = {"drivers": driver.id, "vehicles": shift_owner.id}
    for kind, item in ids.items():
        assert client.get(f"{PAGE}/{kind}/{item}").status_code == 404
        for suffix in ("", "/delete", "/deactivate"):
            answer = _post(client, f"{PAGE}/{kind}/{item}{suffix}", token, name="Mine now")
            assert answer.status_code == 404, suffix
            assert "There is no such" in _text(answer)
    for kind, item in (("depots", "dep_nope"), ("shifts", "shf_nope")):
        assert client.get(f"{PAGE}/{kind}/{item}").status_code == 404
    page = _post(client, f"{PAGE}/drivers/new", token, name="Mine")
    mine = {"driver_id": _new_id(page), "vehicle_id": ids["vehicles"], "depot_id": "dep_nope"}
    page = _post(client, f"{PAGE}/shifts/new", token, **_shift_form(mine, driver_id=driver.id))
    assert page.status_code == 422
    assert _field_error(page, "driver_id") == "No such driver."
    assert _field_error(page, "vehicle_id") == "No such vehicle."
    assert _field_error(page, "depot_id") == "No such depot."
    with transaction(runtime.read_sessions) as s:
        kept = s.get(Driver, driver.id)
        assert kept is not None and (kept.name, kept.active) == ("Zed", True)
        assert s.get(Vehicle, ids["vehicles"]) is not None


@pytest.mark.parametrize("role", [Role.SUPPORT, Role.DRIVER])
def test_support_and_drivers_get_the_403_page(
    client: TestClient, runtime: Runtime, merchant: MerchantCtx, fleet: dict[str, str], role: Role
) -> None:
    email = f"{role.value}@example.com"
    make_user(runtime, merchant.id, email, role)
    token = sign_in(client, email)
    assert 'href="/console/drivers"' not in client.get("/console").text
    for url in (PAGE, f"{PAGE}/shifts", f"{PAGE}/drivers/{fleet['driver_id']}"):
        page = client.get(url)
        assert page.status_code == 403 and "Not allowed" in page.text
    answer = _post(client, f"{PAGE}/drivers/new", token, name="Sneaky")
    assert answer.status_code == 403
    assert _post(client, f"{PAGE}/drivers/{fleet['driver_id']}/delete", token).status_code == 403
    assert len(_drivers(runtime, merchant.id)) == 1


def test_signed_out_visitors_are_sent_to_sign_in(client: TestClient) -> None:
    answer = client.get(f"{PAGE}/shifts")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/login?next=/console/drivers/shifts"


# --- The form conversions on their own ------------------------------------------------------


def test_opening_hours_are_summarised_by_runs_of_days() -> None:
    same = [["08:00", "18:00"]]
    hours = {
        "mon": same,
        "tue": same,
        "wed": same,
        "thu": same,
        "fri": same,
        "sun": [["10:00", "12:00"]],
    }
    assert hours_summary(hours) == ["Mon–Fri 08:00–18:00", "Sun 10:00–12:00"]
    assert hours_summary({"mon": same, "tue": same, "thu": same}) == [
        "Mon, Tue 08:00–18:00",
        "Thu 08:00–18:00",
    ]
    assert hours_summary({}) == []


def test_form_syntax_is_read_leniently_and_the_rest_left_to_the_schema() -> None:
    base = {k: v for k, v in DEPOT.items() if not k.startswith("hours_")}
    depot = depot_in({**base, "hours_fri": "8h30 – 12.15; 13 to 17:45"})
    assert depot.opening_hours == {"fri": [["08:30", "12:15"], ["13:00", "17:45"]]}
    with pytest.raises(FormInvalid) as caught:
        depot_in({**base, "hours_fri": "12:00-"})
    assert [e.field for e in caught.value.errors] == ["hours_fri"]
    shift = shift_in(
        {**_shift_form({"driver_id": "d", "vehicle_id": "v", "depot_id": "p"})}, MONACO
    )
    assert isinstance(shift, ShiftIn) and shift.brk is not None
    assert shift.brk.duration_s == 1800 and shift.start_at.tzinfo == MONACO
    with pytest.raises(FormInvalid) as caught:
        shift_in({"break_minutes": "half an hour", "start_at": "2026-11-25T08:00"}, MONACO)
    fields = {e.field for e in caught.value.errors}
    assert {"break.duration_s", "driver_id", "end_at", "break.earliest_start"} <= fields


def test_dropped_rows_are_shown_apart(
    client: TestClient, token: str, runtime: Runtime, merchant: MerchantCtx, fleet: dict[str, str]
) -> None:
    shift_id = _new_id(_post(client, f"{PAGE}/shifts/new", token, **_shift_form(fleet)))
    _post(client, f"{PAGE}/shifts/{shift_id}/drop", token)
    page = client.get(f"{PAGE}/shifts")
    assert f'<tr id="row-{shift_id}" class="is-inactive">' in page.text
    assert "Restore shift" in client.get(f"{PAGE}/shifts/{shift_id}").text
    with transaction(runtime.read_sessions) as s:
        assert s.get(Shift, shift_id) is not None and s.get(Depot, fleet["depot_id"]) is not None
