"""The console's orders screen over HTTP: search by reference, name and street; filters by
day, status and zone; sorts and keyset pages; an order's page with its timeline; the window
moved, details edited and the order cancelled through the domain verbs; CSRF, roles (403) and
tenancy (404); a CSV import previewed with its errors, imported, and undone as a whole.

The client does not follow redirects, so each Post/Redirect/Get step is checked."""

# The pages write ranges with an en dash, so the expected texts do too.
# ruff: noqa: RUF001

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from doorstep.db.engine import transaction
from doorstep.domain.accounts.models import Role
from doorstep.domain.orders.models import DeliveryEvent, Order
from doorstep.domain.slots.schemas import ZoneIn
from doorstep.domain.slots.zones import create_zone
from doorstep.runtime import Runtime
from tests.conftest import MerchantCtx
from tests.console_session import csrf_of, make_user, sign_in
from tests.factories import local, make_depot, make_order

DISPATCHER = "disp@example.com"
SUPPORT = "help@example.com"
DAY = date(2026, 11, 25)  # the frozen clock's day in Monaco
PAGE = "/console/orders"
INSIDE = (43.7285, 7.4150)  # Fontvieille, in the zone
OUTSIDE = (43.7450, 7.4300)  # Monte-Carlo, out of it


@pytest.fixture
def token(client: TestClient, runtime: Runtime, merchant: MerchantCtx) -> str:
    """A signed-in dispatcher's CSRF token."""
    make_user(runtime, merchant.id, DISPATCHER, Role.DISPATCHER)
    return sign_in(client, DISPATCHER)


def _orders(runtime: Runtime, merchant_id: str, *specs: dict[str, object]) -> dict[str, str]:
    """Orders from ``specs`` (reference and make_order's keywords); reference -> id."""
    ids = {}
    with transaction(runtime.sessions) as s:
        for spec in specs:
            kw = dict(spec)
            lat, lon = kw.pop("at", INSIDE)  # type: ignore[misc]
            order = make_order(s, merchant_id, lat=lat, lon=lon, **kw)  # type: ignore[arg-type]
            ids[order.reference] = order.id
    return ids


def _listed(page: Response) -> list[str]:
    """The references the orders table shows, top to bottom."""
    assert page.status_code == 200, page.text
    return re.findall(r'<a href="/console/orders/ord_[0-9A-Z]+">([^<]+)</a>', page.text)


def _text(page: Response) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page.text)).split())


def _follow(client: TestClient, answer: Response) -> Response:
    assert answer.status_code == 303, answer.text
    return client.get(answer.headers["location"].partition("#")[0])


def window(day: date, start: int, end: int) -> tuple[object, object]:
    return (local(day, start), local(day, end))


def test_search_finds_orders_by_reference_name_or_street(
    client: TestClient, token: str, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """One box searches references, recipients' names and streets, without regard to case."""
    _orders(
        runtime,
        merchant.id,
        {"reference": "FL-1001", "recipient_name": "Ada Marin", "address_line1": "2 Rue Basse"},
        {
            "reference": "FL-1002",
            "recipient_name": "Bruno Costa",
            "address_line1": "9 Quai Antoine",
        },
        {"reference": "GR-77", "recipient_name": "Chloé Rossi", "address_line1": "4 Rue Grimaldi"},
    )
    assert sorted(_listed(client.get(PAGE, params={"q": "fl-100"}))) == ["FL-1001", "FL-1002"]
    assert _listed(client.get(PAGE, params={"q": "costa"})) == ["FL-1002"]
    assert _listed(client.get(PAGE, params={"q": "rue grimaldi"})) == ["GR-77"]
    assert _listed(client.get(PAGE, params={"q": "100%"})) == []  # % is a character, not a wildcard
    assert "No order matches" in client.get(PAGE, params={"q": "nobody"}).text


def test_filters_by_day_status_and_zone_combine(
    client: TestClient, token: str, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """Day (the window's, in the merchant's timezone), status and service zone each narrow
    the list, and together they keep only the orders that satisfy all three."""
    tomorrow = DAY + timedelta(days=1)
    _orders(
        runtime,
        merchant.id,
        {"reference": "A", "window": window(DAY, 9, 11)},
        {"reference": "B", "window": window(DAY, 14, 16), "status": "scheduled"},
        {"reference": "C", "window": window(tomorrow, 9, 11)},
        {"reference": "D", "window": window(DAY, 9, 11), "at": OUTSIDE},
    )
    with transaction(runtime.sessions) as s:
        depot = make_depot(s, merchant.id)
        box = [[7.40, 43.72], [7.43, 43.72], [7.43, 43.735], [7.40, 43.735], [7.40, 43.72]]
        zone = create_zone(
            s,
            runtime.clock,
            merchant.id,
            ZoneIn(
                depot_id=depot.id,
                name="Fontvieille",
                geometry={"type": "Polygon", "coordinates": [box]},
            ),
        )
        zone_id = zone.id

    def refs(**params: str) -> list[str]:
        return sorted(_listed(client.get(PAGE, params=params)))

    assert refs(date=DAY.isoformat()) == ["A", "B", "D"]
    assert refs(status="pending") == ["A", "C", "D"]
    assert refs(zone=zone_id) == ["A", "B", "C"]
    assert refs(date=DAY.isoformat(), status="pending", zone=zone_id) == ["A"]
    page = client.get(PAGE, params={"zone": zone_id})
    assert 'id="order-count">3<' in page.text
    assert "Fontvieille" in page.text  # the zone filter is offered once zones exist


def test_sort_and_pages_walk_every_order_once(
    client: TestClient, token: str, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """Sorted by window, 60 orders come in a page of 50 and a page of 10 through the "Next
    page" link: soonest first, orders without a window last, none twice, none missing."""
    specs: list[dict[str, object]] = [
        {
            "reference": f"W-{n:02d}",
            "window": (local(DAY, 9) + timedelta(minutes=n), local(DAY, 18)),
        }
        for n in range(58)
    ]
    specs += [{"reference": "NW-1"}, {"reference": "NW-2"}]
    _orders(runtime, merchant.id, *reversed(specs))

    first = client.get(PAGE, params={"sort": "window"})
    refs = _listed(first)
    assert len(refs) == 50
    match = re.search(r'href="([^"]+)" rel="next"', first.text)
    assert match, "no next page link"
    second = client.get(html.unescape(match.group(1)))
    refs += _listed(second)
    assert 'rel="next"' not in second.text
    assert refs[:58] == [f"W-{n:02d}" for n in range(58)]
    assert sorted(refs[58:]) == ["NW-1", "NW-2"]
    by_name = _listed(client.get(PAGE, params={"sort": "reference"}))
    assert by_name == sorted(by_name)
    stale = client.get(PAGE, params={"sort": "reference", "after": "not-a-cursor"})
    assert "out of date" in stale.text and len(_listed(stale)) == 50


def test_another_merchants_orders_are_neither_listed_nor_shown(
    client: TestClient,
    token: str,
    runtime: Runtime,
    merchant: MerchantCtx,
    make_merchant: Callable[..., MerchantCtx],
) -> None:
    """Orders are scoped to the signed-in user's merchant: another's is a 404 page, and so is
    any change posted to it."""
    rival = make_merchant("Rival Roses")
    theirs = _orders(runtime, rival.id, {"reference": "THEIRS"})["THEIRS"]
    _orders(runtime, merchant.id, {"reference": "MINE"})

    assert _listed(client.get(PAGE)) == ["MINE"]
    assert client.get(f"{PAGE}/{theirs}").status_code == 404
    moved = client.post(f"{PAGE}/{theirs}/cancel", data={"csrf_token": token})
    assert moved.status_code == 404
    with transaction(runtime.sessions) as s:
        order = s.get(Order, theirs)
        assert order is not None and order.status == "pending"


def test_moving_the_window_logs_it_and_the_timeline_says_so(
    client: TestClient, token: str, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """The window form moves the window through the domain verb (sequence +1, event logged)
    and the order's page shows the new window, a "Window moved" line with the times, and a
    link to the recipient's tracking page, which shows the new window too."""
    created = client.post(
        "/v1/orders",
        json={
            "reference": "MV-1",
            "recipient": {"name": "Ada Marin"},
            "address": {
                "line1": "1 Rue Basse",
                "city": "Monaco",
                "country": "MC",
                "lat": 43.73,
                "lon": 7.42,
            },
            "window": {"start": local(DAY, 9).isoformat(), "end": local(DAY, 11).isoformat()},
        },
        headers=merchant.headers,
    )
    assert created.status_code == 201, created.text
    order_id = created.json()["id"]
    answer = client.post(
        f"{PAGE}/{order_id}/window",
        data={
            "csrf_token": token,
            "window_date": DAY.isoformat(),
            "window_from": "14:00",
            "window_to": "16:00",
        },
    )
    page = _follow(client, answer)
    text = _text(page)
    assert "Moved the window of MV-1 to Wed 25 Nov, 14:00–16:00." in text
    assert "Window moved Wed 25 Nov, 09:00–11:00 → Wed 25 Nov, 14:00–16:00" in text
    assert "Disp" in text  # who did it: the signed-in user's name
    assert "Order created through the API" in text
    tracking = re.search(r'href="(/t/[^"]+)" id="tracking-link"', page.text)
    assert tracking, "no link to the recipient's tracking page"
    assert "14:00" in client.get(tracking.group(1)).text  # the recipient sees the new window
    with transaction(runtime.sessions) as s:
        order = s.get(Order, order_id)
        assert order is not None
        assert order.window_sequence == 1
        assert order.window_start == local(DAY, 14)


def test_a_bad_window_or_field_is_shown_beside_it_and_nothing_changes(
    client: TestClient, token: str, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """A window that ends before it starts, or one already over, and an invalid e-mail are
    answered 422 with the message beside the input; the order stays as it was."""
    order_id = _orders(runtime, merchant.id, {"reference": "BAD", "window": window(DAY, 9, 11)})[
        "BAD"
    ]
    backwards = client.post(
        f"{PAGE}/{order_id}/window",
        data={
            "csrf_token": token,
            "window_date": DAY.isoformat(),
            "window_from": "16:00",
            "window_to": "14:00",
        },
    )
    assert backwards.status_code == 422
    assert "The window must end after it starts." in _text(backwards)
    yesterday = (DAY - timedelta(days=1)).isoformat()
    past = client.post(
        f"{PAGE}/{order_id}/window",
        data={
            "csrf_token": token,
            "window_date": yesterday,
            "window_from": "09:00",
            "window_to": "11:00",
        },
    )
    assert past.status_code == 422
    assert "already ended" in _text(past)
    email = client.post(
        f"{PAGE}/{order_id}/edit",
        data={
            "csrf_token": token,
            "recipient_name": "Ada",
            "address_line1": "1 Rue",
            "city": "Monaco",
            "recipient_email": "not-an-address",
        },
    )
    assert email.status_code == 422
    assert 'id="f-recipient_email-error"' in email.text
    assert 'value="not-an-address"' in email.text  # as typed
    with transaction(runtime.sessions) as s:
        order = s.get(Order, order_id)
        assert order is not None
        assert (order.window_start, order.recipient_email) == (local(DAY, 9), None)


def test_edit_and_cancel_go_through_the_domain(
    client: TestClient, token: str, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """Saved details are logged as changed fields; a cancelled order says so, keeps its note
    in the timeline and offers no more changes."""
    order_id = _orders(runtime, merchant.id, {"reference": "ED-1", "window": window(DAY, 9, 11)})[
        "ED-1"
    ]
    saved = client.post(
        f"{PAGE}/{order_id}/edit",
        data={
            "csrf_token": token,
            "recipient_name": "Ada Marin",
            "address_line1": "7 Rue Basse",
            "city": "Monaco",
            "recipient_phone": "+33612345678",
            "instructions": "Ring twice",
        },
    )
    page = _follow(client, saved)
    assert "Details changed" in _text(page)
    assert "street 1 Avenue de la Costa → 7 Rue Basse" in _text(page)
    cancelled = client.post(
        f"{PAGE}/{order_id}/cancel", data={"csrf_token": token, "note": "Shop closed"}
    )
    page = _follow(client, cancelled)
    text = _text(page)
    assert "Cancelled order ED-1." in text
    assert "Cancelled was pending; merchant cancelled; Shop closed" in text
    assert "can no longer be changed" in text
    assert f'action="{PAGE}/{order_id}/cancel"' not in page.text
    again = _follow(client, client.post(f"{PAGE}/{order_id}/cancel", data={"csrf_token": token}))
    assert "Not cancelled." in _text(again)


def test_forms_need_the_csrf_token_and_a_role_that_may_change_orders(
    client: TestClient, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """Without the session's token a change is refused (403); support staff see the order but
    no forms, and their posts are refused too."""
    make_user(runtime, merchant.id, DISPATCHER, Role.DISPATCHER)
    make_user(runtime, merchant.id, SUPPORT, Role.SUPPORT)
    order_id = _orders(runtime, merchant.id, {"reference": "CS-1"})["CS-1"]
    sign_in(client, DISPATCHER)
    forged = client.post(f"{PAGE}/{order_id}/cancel", data={"csrf_token": "forged"})
    assert forged.status_code == 403
    client.post("/console/logout", data={"csrf_token": csrf_of(client.get("/console"))})
    support_token = sign_in(client, SUPPORT)
    page = client.get(f"{PAGE}/{order_id}")
    assert page.status_code == 200
    assert "Move the window" not in page.text and "Cancel the order" not in page.text
    refused = client.post(f"{PAGE}/{order_id}/cancel", data={"csrf_token": support_token})
    assert refused.status_code == 403
    with transaction(runtime.sessions) as s:
        order = s.get(Order, order_id)
        assert order is not None and order.status == "pending"


CSV_HEADER = "reference,recipient_name,address_line1,city,country,lat,lon,window_start,window_end"


def _upload(client: TestClient, token: str, content: str) -> Response:
    return client.post(
        f"{PAGE}/import/preview",
        data={"csrf_token": token},
        files={"file": ("orders.csv", content.encode(), "text/csv")},
    )


def test_preview_shows_row_errors_and_imports_nothing(
    client: TestClient, token: str, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """A file with errors is previewed with each problem by row and column, the valid rows
    listed, no import button, and no order written."""
    content = "\n".join(
        [
            CSV_HEADER,
            "P-1,Ada,1 Rue Basse,Monaco,MC,43.73,7.42,2026-11-25 14:00,2026-11-25 16:00",
            "P-2,,2 Rue Basse,Monaco,MC,43.73,7.42,,",
            "P-1,Bo,3 Rue Basse,Monaco,MC,43.73,7.42,,",
        ]
    )
    page = _upload(client, token, content)
    assert page.status_code == 200, page.text
    text = _text(page)
    assert "2 problems in 2 rows; 1 row valid." in text
    assert "3 recipient_name required, but the cell is empty" in text
    assert "4 reference duplicate of row 2" in text
    assert "Wed 25 Nov, 14:00–16:00" in text  # the valid row, in the merchant's time
    assert f'action="{PAGE}/import"' not in page.text
    with transaction(runtime.sessions) as s:
        assert s.query(Order).count() == 0


def test_a_clean_file_is_imported_after_its_preview_and_undone_as_a_whole(
    client: TestClient, token: str, runtime: Runtime, merchant: MerchantCtx
) -> None:
    """Preview, confirm, see the import's page; undo cancels its orders that have not left and
    keeps the one already out for delivery."""
    content = "\n".join(
        [CSV_HEADER] + [f"I-{n},Ada {n},{n} Rue Basse,Monaco,MC,43.73,7.42,," for n in range(1, 4)]
    )
    preview = _upload(client, token, content)
    assert "All 3 rows are valid." in _text(preview)
    hidden = re.search(r'name="content" value="([^"]*)"', preview.text)
    assert hidden
    done = client.post(
        f"{PAGE}/import", data={"csrf_token": token, "content": html.unescape(hidden.group(1))}
    )
    page = _follow(client, done)
    assert "Imported 3 orders." in _text(page)
    import_id = done.headers["location"].rsplit("/", 1)[1]
    with transaction(runtime.sessions) as s:
        orders = {o.reference: o for o in s.query(Order).filter_by(import_id=import_id)}
        assert sorted(orders) == ["I-1", "I-2", "I-3"]
        orders["I-3"].status = "out_for_delivery"  # as if it had left the depot
    assert "Undo import: cancel 2 orders" in _text(client.get(f"{PAGE}/imports/{import_id}"))

    undone = _follow(
        client, client.post(f"{PAGE}/imports/{import_id}/undo", data={"csrf_token": token})
    )
    text = _text(undone)
    assert "Undid the import: cancelled 2 orders. 1 had already left and keep their status." in text
    with transaction(runtime.sessions) as s:
        statuses = {o.reference: o.status for o in s.query(Order).filter_by(import_id=import_id)}
        events = s.query(DeliveryEvent).filter_by(type="order.cancelled").count()
    assert statuses == {"I-1": "cancelled", "I-2": "cancelled", "I-3": "out_for_delivery"}
    assert events == 2
    assert client.get(f"{PAGE}/imports/imp_UNKNOWN").status_code == 404


def test_a_file_that_is_not_utf8_is_named_as_such_and_another_merchants_import_is_404(
    client: TestClient,
    token: str,
    runtime: Runtime,
    merchant: MerchantCtx,
    make_merchant: Callable[..., MerchantCtx],
) -> None:
    """A Latin-1 file is refused with the way to fix it; another merchant's import can be
    neither seen nor undone from this console, and its orders stay."""
    latin1 = f"{CSV_HEADER}\nL-1,Zoé,1 Rue,Monaco,MC,43.73,7.42,,\n".encode("latin-1")
    page = client.post(
        f"{PAGE}/import/preview",
        data={"csrf_token": token},
        files={"file": ("orders.csv", latin1, "text/csv")},
    )
    assert page.status_code == 422
    assert "not UTF-8 text; save it as 'CSV UTF-8'" in _text(page)

    rival = make_merchant("Rival Roses")
    body = f"{CSV_HEADER}\nR-1,Ada,1 Rue,Monaco,MC,43.73,7.42,,\n".encode()
    created = client.post(
        "/v1/orders/import", content=body, headers={**rival.headers, "Content-Type": "text/csv"}
    ).json()
    theirs = created["import_id"]
    assert client.get(f"{PAGE}/imports/{theirs}").status_code == 404
    assert (
        client.post(f"{PAGE}/imports/{theirs}/undo", data={"csrf_token": token}).status_code == 404
    )
    with transaction(runtime.sessions) as s:
        assert s.query(Order).filter_by(import_id=theirs).one().status == "pending"
