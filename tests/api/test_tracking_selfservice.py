"""The tracking page's "Change delivery" forms, over HTTP as a browser without JavaScript sends
them: each change (reschedule, redirect three ways, hold, instructions) and each refusal (after
the cut-off, a window not offered, an unknown link, a forged form). The clock stands at
Wednesday 25 November 2026, 08:00 in Monaco; the order's window is Thursday 10:00-12:00."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from doorstep.db.engine import transaction
from doorstep.domain.accounts.models import Merchant
from doorstep.runtime import Runtime
from tests.conftest import MerchantCtx
from tests.slots_setup import EVERY_DAY, IN_MONACO, monaco_setup

WINDOWS = [
    {"days": EVERY_DAY, "start": "10:00", "end": "12:00", "capacity": 3},
    {"days": ["sat"], "start": "09:00", "end": "13:00", "capacity": 3, "fee_cents": 700},
]
SATURDAY = "2026-11-28T09:00:00+01:00"


def visible_text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace(" ,", ",")


def new_order(
    client: TestClient, merchant: MerchantCtx, ref: str = "SO-1", locale: str | None = None
) -> dict[str, Any]:
    recipient: dict[str, Any] = {"name": "Ada Lovelace", "phone": "+33612345678"}
    if locale:
        recipient["locale"] = locale
    r = client.post(
        "/v1/orders",
        headers=merchant.headers,
        json={
            "reference": ref,
            "recipient": recipient,
            "address": {
                "line1": "1 Avenue de la Costa",
                "city": "Monaco",
                "country": "MC",
                **IN_MONACO,
            },
            "window": {"start": "2026-11-26T10:00:00+01:00", "end": "2026-11-26T12:00:00+01:00"},
            "instructions": "Door code 1234",
        },
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def path_of(order: dict[str, Any]) -> str:
    return "/t/" + str(order["tracking_url"]).rsplit("/", 1)[1]


def form_token_of(html: str) -> str:
    match = re.search(r'name="form_token" value="([^"]+)"', html)
    assert match is not None, "the page has no form token"
    return match.group(1)


def post(
    client: TestClient,
    path: str,
    action: str,
    data: dict[str, str],
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    if token is None:
        token = form_token_of(client.get(path).text)
    return client.post(
        f"{path}/{action}",
        data={"form_token": token, **data},
        headers={"Origin": "http://testserver", **(headers or {})},
        follow_redirects=False,
    )


def event_types(client: TestClient, merchant: MerchantCtx, order_id: str) -> list[str]:
    r = client.get(f"/v1/orders/{order_id}/events", headers=merchant.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    return [str(e["type"]) for e in body["data"]]


def test_the_page_offers_the_calendars_windows_with_saturday_and_sets_no_cookie(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """An open order's page has the "Change delivery" forms, offering Saturday 09:00-13:00
    (marked as a weekend, with its fee) but not the current window, each form with the link's
    form token; nothing sets a cookie."""
    cal = monaco_setup(app_client, merchant, windows=WINDOWS)["calendar"]
    order = new_order(app_client, merchant)
    resp = app_client.get(path_of(order))
    assert resp.status_code == 200
    text = visible_text(resp.text)
    assert "Change delivery" in text
    assert "Saturday, 28 November 2026 Weekend" in text
    assert "09:00\u201313:00 €7.00" in text
    assert f'value="{cal["id"]}|{SATURDAY}"' in resp.text
    assert "2026-11-26T10:00:00+01:00" not in resp.text
    assert resp.text.count('name="form_token"') == 5  # reschedule, 2 redirects, hold, notes
    assert "Door code 1234" in resp.text  # the instructions, to edit
    assert "set-cookie" not in resp.headers
    assert resp.headers["referrer-policy"] == "same-origin"


def test_a_reschedule_to_saturday_moves_the_window_and_logs_the_event(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """Posting the Saturday window redirects back with a confirmation; the page's window is
    now Saturday, and the order's timeline has order.rescheduled by the recipient."""
    cal = monaco_setup(app_client, merchant, windows=WINDOWS)["calendar"]
    order = new_order(app_client, merchant)
    path = path_of(order)
    r = post(app_client, path, "reschedule", {"window": f"{cal['id']}|{SATURDAY}"})
    assert r.status_code == 303, r.text
    assert r.headers["location"] == f"{path}?done=reschedule#change-result"
    page = visible_text(app_client.get(r.headers["location"]).text)
    assert "Your delivery has been rescheduled." in page
    assert "Delivery window Saturday, 28 November 2026, 09:00\u201313:00" in page
    assert "Delivery rescheduled" in page  # the timeline
    got = app_client.get(f"/v1/orders/{order['id']}", headers=merchant.headers).json()
    assert got["window"]["start"] == SATURDAY
    assert "order.rescheduled" in event_types(app_client, merchant, order["id"])


def test_a_window_not_offered_is_refused_and_the_order_stays(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """A Saturday afternoon the calendar does not have, a garbled value and the current window
    each come back as the page with a 422 and the reason beside the windows; nothing moves."""
    cal = monaco_setup(app_client, merchant, windows=WINDOWS)["calendar"]
    order = new_order(app_client, merchant)
    path = path_of(order)
    r = post(app_client, path, "reschedule", {"window": f"{cal['id']}|2026-11-28T15:00:00+01:00"})
    assert r.status_code in (409, 422), r.text
    assert "That window is no longer available. Please choose another one." in r.text
    assert 'aria-invalid="true"' in r.text
    r = post(app_client, path, "reschedule", {"window": "nonsense"})
    assert r.status_code == 422
    assert "Choose one of the windows offered." in r.text
    r = post(app_client, path, "reschedule", {"window": f"{cal['id']}|2026-11-26T10:00:00+01:00"})
    assert r.status_code == 422
    assert "Your delivery is already in that window." in r.text
    got = app_client.get(f"/v1/orders/{order['id']}", headers=merchant.headers).json()
    assert got["window"]["start"] == "2026-11-26T10:00:00+01:00"
    assert "order.rescheduled" not in event_types(app_client, merchant, order["id"])


def test_redirects_to_a_neighbour_a_safe_place_and_a_pickup_point(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """A neighbour (name, house number) shows on the page; a safe place without consent to a
    photo is refused beside the checkbox, with it accepted; a pickup point becomes where the
    parcel goes. Each accepted redirect is an order.redirected event."""
    monaco_setup(app_client, merchant, windows=WINDOWS)
    point = app_client.post(
        "/v1/pickup-points",
        headers=merchant.headers,
        json={
            "name": "Tabac du Port",
            "kind": "shop",
            "address": {
                "line1": "4 Quai Albert Ier",
                "city": "Monaco",
                "country": "MC",
                "lat": 43.7350,
                "lon": 7.4215,
            },
        },
    )
    assert point.status_code == 201, point.text
    order = new_order(app_client, merchant)
    path = path_of(order)
    assert "Tabac du Port" in app_client.get(path).text
    r = post(
        app_client,
        path,
        "redirect",
        {"kind": "neighbour", "neighbour_name": "Mme Curie", "house_number": "3"},
    )
    assert r.status_code == 303
    page = visible_text(app_client.get(r.headers["location"]).text)
    assert "Leave it with your neighbour Mme Curie, number 3." in page
    r = post(app_client, path, "redirect", {"kind": "neighbour", "neighbour_name": "Mme Curie"})
    assert r.status_code == 422 and "Enter your neighbour&#39;s house number." in r.text
    r = post(app_client, path, "redirect", {"kind": "safe_place", "place": "behind the gate"})
    assert r.status_code == 422
    assert "please agree to it" in r.text and 'value="behind the gate"' in r.text
    r = post(
        app_client,
        path,
        "redirect",
        {"kind": "safe_place", "place": "behind the gate", "photo_consent": "yes"},
    )
    assert r.status_code == 303
    assert "Leave it in a safe place: behind the gate." in app_client.get(path).text
    r = post(
        app_client,
        path,
        "redirect",
        {"kind": "pickup_point", "pickup_point_id": point.json()["id"]},
    )
    assert r.status_code == 303
    assert "Collect it at Tabac du Port." in app_client.get(path).text
    got = app_client.get(f"/v1/orders/{order['id']}", headers=merchant.headers).json()
    assert got["address"]["line1"] == "4 Quai Albert Ier"
    types = event_types(app_client, merchant, order["id"])
    assert types.count("order.redirected") == 3


def test_a_hold_while_away_and_new_instructions(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """Holding until 1 December puts the delivery on hold and the page says until when; a
    date beyond the merchant's limit is refused; new instructions are saved and logged."""
    monaco_setup(app_client, merchant, windows=WINDOWS)
    order = new_order(app_client, merchant)
    path = path_of(order)
    r = post(app_client, path, "hold", {"until": "2027-06-01"})
    assert r.status_code == 422
    assert "Choose a date after today" in r.text
    r = post(app_client, path, "hold", {"until": "2026-12-01"})
    assert r.status_code == 303
    page = visible_text(app_client.get(r.headers["location"]).text)
    assert "Your delivery is on hold while you are away." in page
    assert "Deliveries are on hold until Tuesday, 1 December 2026." in page
    r = post(app_client, path, "instructions", {"instructions": "Ring twice, 3rd floor"})
    assert r.status_code == 303
    got = app_client.get(f"/v1/orders/{order['id']}", headers=merchant.headers).json()
    assert got["status"] == "on_hold"
    assert got["instructions"] == "Ring twice, 3rd floor"
    types = event_types(app_client, merchant, order["id"])
    assert "order.held" in types and "order.instructions_changed" in types


def test_after_the_driver_set_off_the_section_says_why_and_changes_are_refused(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """Once out for delivery the section offers no form and says why; a form posted from an
    older copy of the page is a 409 with "Too late", and nothing changes."""
    cal = monaco_setup(app_client, merchant, windows=WINDOWS)["calendar"]
    order = new_order(app_client, merchant)
    path = path_of(order)
    token = form_token_of(app_client.get(path).text)
    for status in ("picked_up", "out_for_delivery"):
        r = app_client.post(
            f"/v1/orders/{order['id']}/status", headers=merchant.headers, json={"status": status}
        )
        assert r.status_code == 200, r.text
    page = app_client.get(path).text
    text = visible_text(page)
    assert "Changes are closed. The driver is already on the way with your parcel." in text
    assert 'action="' + path + '/reschedule"' not in page
    r = post(app_client, path, "reschedule", {"window": f"{cal['id']}|{SATURDAY}"}, token=token)
    assert r.status_code == 409
    assert "Too late to change this delivery." in r.text
    r = post(app_client, path, "instructions", {"instructions": "x"}, token=token)
    assert r.status_code == 409
    got = app_client.get(f"/v1/orders/{order['id']}", headers=merchant.headers).json()
    assert got["window"]["start"] == "2026-11-26T10:00:00+01:00"
    assert got["instructions"] == "Door code 1234"


def test_a_failed_attempt_offers_the_next_windows_first(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """After a failed attempt the page asks to choose a new delivery time, with the windows
    shown open, above the map and the details."""
    monaco_setup(app_client, merchant, windows=WINDOWS)
    order = new_order(app_client, merchant)
    for status in ("picked_up", "out_for_delivery"):
        app_client.post(
            f"/v1/orders/{order['id']}/status", headers=merchant.headers, json={"status": status}
        )
    r = app_client.post(
        f"/v1/orders/{order['id']}/status",
        headers=merchant.headers,
        json={"status": "delivery_failed", "reason": "consignee_not_home"},
    )
    assert r.status_code == 200, r.text
    page = app_client.get(path_of(order)).text
    assert "Choose a new delivery time" in page
    assert '<details class="track-change__item" open>' in page
    assert page.index("Choose a new delivery time") < page.index('id="details-title"')
    assert "Saturday, 28 November 2026" in page


def test_an_unknown_link_posting_a_form_gets_the_same_404(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """A form posted to an unknown, malformed or other link, or to an unknown action, answers
    the same 404 page, byte for byte, as opening an unknown link."""
    monaco_setup(app_client, merchant, windows=WINDOWS)
    order = new_order(app_client, merchant)
    expected = app_client.get("/t/" + "A" * 22)
    assert expected.status_code == 404
    for url in (
        "/t/" + "A" * 22 + "/reschedule",
        "/t/nonsense/hold",
        path_of(order) + "/delete",
    ):
        r = app_client.post(url, data={"form_token": "x"}, headers={"Origin": "http://testserver"})
        assert r.status_code == 404, url
        assert r.content == expected.content, url


def test_forged_forms_are_refused(app_client: TestClient, merchant: MerchantCtx) -> None:
    """Without the link's form token, with another link's, from another site's Origin, from a
    null Origin or a cross-site fetch, a change is a 403 and the order stays as it was."""
    monaco_setup(app_client, merchant, windows=WINDOWS)
    order = new_order(app_client, merchant)
    other = new_order(app_client, merchant, ref="SO-2")
    path = path_of(order)
    good = form_token_of(app_client.get(path).text)
    foreign = form_token_of(app_client.get(path_of(other)).text)
    assert good != foreign
    data = {"instructions": "Leave it anywhere"}
    cases: list[tuple[str, dict[str, str]]] = [
        ("", {}),
        (foreign, {}),
        (good, {"Origin": "https://evil.example"}),
        (good, {"Origin": "null"}),
        (good, {"Origin": "http://testserver", "Sec-Fetch-Site": "cross-site"}),
    ]
    for token, headers in cases:
        r = post(app_client, path, "instructions", data, token=token, headers=headers)
        assert r.status_code == 403, (token, headers)
        assert "This form has expired" in r.text
    got = app_client.get(f"/v1/orders/{order['id']}", headers=merchant.headers).json()
    assert got["instructions"] == "Door code 1234"
    # The genuine form from the page itself works.
    r = post(app_client, path, "instructions", data, token=good)
    assert r.status_code == 303


def test_the_section_in_french(app_client: TestClient, merchant: MerchantCtx) -> None:
    """A French recipient reads the section, its windows and its refusals in French."""
    monaco_setup(app_client, merchant, windows=WINDOWS)
    order = new_order(app_client, merchant, locale="fr")
    path = path_of(order)
    text = visible_text(app_client.get(path).text)
    assert "Modifier la livraison" in text and "samedi 28 novembre 2026" in text
    r = post(app_client, path, "redirect", {"kind": "safe_place", "place": "garage"})
    assert r.status_code == 422
    assert "photo" in r.text and "please agree" not in r.text


def test_the_merchants_cutoff_before_the_window_closes_the_section_in_finnish(
    app_client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """With changes closing 1560 minutes (26 hours) before the window, a Finnish recipient's
    page says so in Finnish and offers no form; a form from before is a 409."""
    monaco_setup(app_client, merchant, windows=WINDOWS)
    order = new_order(app_client, merchant, locale="fi")
    path = path_of(order)
    token = form_token_of(app_client.get(path).text)
    with transaction(runtime.sessions) as s:
        row = s.get(Merchant, merchant.id)
        assert row is not None
        row.config = {**row.config, "slots": {"self_service_cutoff_minutes": 1560}}
    text = visible_text(app_client.get(path).text)
    assert "Muutokset on suljettu." in text
    assert "Muutokset sulkeutuvat 1560 minuuttia ennen toimitusikkunaa." in text
    assert 'name="form_token"' not in app_client.get(path).text
    r = post(app_client, path, "hold", {"until": "2026-12-01"}, token=token)
    assert r.status_code == 409
    assert "Tätä toimitusta on liian myöhäistä muuttaa." in r.text


def test_a_delivered_order_has_no_change_section_and_refuses_old_forms(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """Once delivered, the page has no "Change delivery" section at all, and a form kept from
    before is a 409 that leaves the instructions as they were."""
    monaco_setup(app_client, merchant, windows=WINDOWS)
    order = new_order(app_client, merchant)
    path = path_of(order)
    token = form_token_of(app_client.get(path).text)
    for status in ("picked_up", "out_for_delivery", "delivered"):
        r = app_client.post(
            f"/v1/orders/{order['id']}/status", headers=merchant.headers, json={"status": status}
        )
        assert r.status_code == 200, r.text
    page = app_client.get(path).text
    assert "Your parcel has been delivered" in page
    assert "Change delivery" not in page and 'name="form_token"' not in page
    r = post(app_client, path, "instructions", {"instructions": "Too late"}, token=token)
    assert r.status_code == 409
    assert "Too late to change this delivery." in r.text
    got = app_client.get(f"/v1/orders/{order['id']}", headers=merchant.headers).json()
    assert got["instructions"] == "Door code 1234"
