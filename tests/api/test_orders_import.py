"""POST /v1/orders/import takes CSV files as shops export them: all rows or none, errors by
spreadsheet row and column, the JSON API's rules, 10,000 rows in one request."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from doorstep.cli.bench_import import generate_orders_csv
from doorstep.domain.orders.csv_import import COLUMNS, parse_orders_csv
from tests.api.test_orders import lifecycle
from tests.conftest import MerchantCtx

HEADER = "reference,recipient_name,recipient_phone,recipient_email,recipient_locale,address_line1,city,postal_code,country,lat,lon,window_start,window_end,service_level,parcel_count,weight_kg,instructions"  # noqa: E501
ROW = "SO-{n},Ada Lovelace,+33612345678,ada@example.com,fr,1 Avenue de la Costa,Monaco,98000,MC,43.7405,7.4263,2026-11-25T14:00:00+01:00,2026-11-25T16:00:00+01:00,scheduled,2,5,Door code 1234"  # noqa: E501


def csv_of(*rows: str, header: str = HEADER, newline: str = "\n") -> bytes:
    return newline.join([header, *rows, ""]).encode()


def post_csv(
    client: TestClient, merchant: MerchantCtx, content: bytes, content_type: str = "text/csv"
) -> Any:
    return client.post(
        "/v1/orders/import",
        content=content,
        headers={**merchant.headers, "Content-Type": content_type},
    )


def listed(client: TestClient, merchant: MerchantCtx) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = client.get(
        "/v1/orders", params={"limit": 500}, headers=merchant.headers
    ).json()["data"]
    return data


def test_a_valid_file_creates_every_order(app_client: TestClient, merchant: MerchantCtx) -> None:
    """All rows become orders, answered with counts, ids, references, status and tracking URLs;
    each reads back like an order created through JSON."""
    resp = post_csv(app_client, merchant, csv_of(ROW.format(n=1), ROW.format(n=2)))
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["created"] == 2 and body["import_id"].startswith("imp_")
    assert [o["reference"] for o in body["orders"]] == ["SO-1", "SO-2"]
    first = body["orders"][0]
    assert (first["status"], first["reason"], first["tag"]) == ("pending", None, "Pending")
    order = app_client.get(f"/v1/orders/{first['id']}", headers=merchant.headers).json()
    assert order["tracking_url"] == first["tracking_url"]
    assert order["recipient"] == {
        "name": "Ada Lovelace",
        "phone": "+33612345678",
        "email": "ada@example.com",
        "locale": "fr",
    }
    assert order["window"] == {
        "start": "2026-11-25T14:00:00+01:00",
        "end": "2026-11-25T16:00:00+01:00",
    }
    assert order["parcel_count"] == 2 and order["weight_kg"] == 5.0
    assert [p["weight_kg"] for p in order["parcels"]] == [2.5, 2.5]
    events = app_client.get(f"/v1/orders/{first['id']}/events", headers=merchant.headers)
    (created,) = lifecycle(events.json()["data"])
    assert created["type"] == "order.created" and created["data"]["import"] == body["import_id"]


def test_a_spreadsheet_export_from_a_european_locale_is_read(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """Semicolons, a BOM, CRLF, decimal commas, quoted cells with delimiters and line breaks,
    headers in another case with spaces, blank optional cells and blank rows all work."""
    text = (
        "\ufeffReference; Recipient Name ;ADDRESS LINE1;City;Country;Lat;Lon;Weight kg;"
        "Instructions\r\n"
        'A-1;"Lovelace; Ada";"1 Av. de la Costa";Monaco;MC;43,7405;7,4263;2,5;'
        '"Ring twice\r\nthen wait"\r\n'
        ";;;;;;;;\r\n"
        "A-2;Grace;2 Rue Grimaldi;Monaco;mc;43.73;7.42;;\r\n"
    )
    resp = post_csv(app_client, merchant, text.encode("utf-8"))
    assert resp.status_code == 201, resp.text
    orders = {o["reference"]: o for o in listed(app_client, merchant)}
    assert orders["A-1"]["recipient"]["name"] == "Lovelace; Ada"
    assert orders["A-1"]["address"]["lat"] == 43.7405 and orders["A-1"]["weight_kg"] == 2.5
    assert orders["A-1"]["instructions"] == "Ring twice\r\nthen wait"
    assert orders["A-2"]["address"]["country"] == "MC"
    assert orders["A-2"]["instructions"] is None and orders["A-2"]["service_level"] == "next_day"


def test_any_invalid_row_rejects_the_file_with_row_and_column(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """One bad row means nothing is created; each error names the spreadsheet row (header =
    row 1) and the column, as a 422 problem."""
    rows = [
        ROW.format(n=1),
        ROW.format(n=2).replace("43.7405", "123"),
        ROW.format(n=3).replace("+33612345678", "call me").replace(",fr,", ",xx-nope,"),
        ROW.format(n=4).replace("2026-11-25T16:00:00+01:00", "2026-11-25T13:00:00+01:00"),
        ROW.format(n=5).replace("scheduled,2,5", "express,0,heavy"),
        ROW.format(n=6).replace("Ada Lovelace", ""),
    ]
    resp = post_csv(app_client, merchant, csv_of(*rows))
    assert resp.status_code == 422
    assert resp.headers["content-type"].startswith("application/problem+json")
    body = resp.json()
    found = {(e["row"], e["field"]) for e in body["errors"]}
    assert found == {
        (3, "lat"),
        (4, "recipient_phone"),
        (4, "recipient_locale"),
        (5, "window_end"),
        (6, "service_level"),
        (6, "parcel_count"),
        (6, "weight_kg"),
        (7, "recipient_name"),
    }
    assert body["error_count"] == len(found)
    by_cell = {(e["row"], e["field"]): e["message"] for e in body["errors"]}
    assert by_cell[(4, "recipient_phone")] == "not a valid phone number"
    assert by_cell[(7, "recipient_name")] == "required, but the cell is empty"
    assert listed(app_client, merchant) == []


def test_duplicate_references_in_the_file_or_already_used_are_errors(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """A reference repeated in the file, or one an existing order has, rejects the file."""
    assert post_csv(app_client, merchant, csv_of(ROW.format(n=1))).status_code == 201
    resp = post_csv(app_client, merchant, csv_of(ROW.format(n=1), ROW.format(n=2), ROW.format(n=2)))
    assert resp.status_code == 422
    errors = {(e["row"], e["field"]): e["message"] for e in resp.json()["errors"]}
    assert errors == {
        (2, "reference"): "an order with this reference exists",
        (4, "reference"): "duplicate of row 3",
    }
    assert len(listed(app_client, merchant)) == 1


def test_header_problems_are_reported_on_row_1(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """A missing required column, an unknown column or a repeated one are errors on row 1."""
    header = "reference,recipient_name,address_line1,country,lat,colour,Reference"
    resp = post_csv(app_client, merchant, csv_of("R,Ada,x,MC,1,red,R", header=header))
    assert resp.status_code == 422
    errors = {(e["row"], e["field"]) for e in resp.json()["errors"]}
    assert errors == {(1, "city"), (1, "colour"), (1, "reference")}


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (b"", "file"),
        (HEADER.encode() + b"\n", "file"),
        ("reference,recipient_name\nR,Zo\xe9\n".encode("latin-1"), "file"),
        (csv_of(ROW.format(n=1) + ",extra"), "row"),
    ],
    ids=["empty", "header-only", "latin-1", "extra-cells"],
)
def test_unreadable_files_are_explained(
    app_client: TestClient, merchant: MerchantCtx, content: bytes, field: str
) -> None:
    """Empty files, files without rows, non-UTF-8 files and rows wider than the header are 422
    problems naming the file or row."""
    resp = post_csv(app_client, merchant, content)
    assert resp.status_code == 422
    assert field in {e["field"] for e in resp.json()["errors"]}


def test_only_csv_is_accepted(app_client: TestClient, merchant: MerchantCtx) -> None:
    """A JSON body on the import endpoint is a 415 problem."""
    resp = post_csv(app_client, merchant, b"[]", content_type="application/json")
    assert resp.status_code == 415
    assert resp.headers["content-type"].startswith("application/problem+json")


def test_imports_are_scoped_to_the_merchant(
    app_client: TestClient, make_merchant: Callable[..., MerchantCtx]
) -> None:
    """Another merchant's references do not clash with an import, and its orders stay hidden."""
    first, second = make_merchant("A"), make_merchant("B")
    assert post_csv(app_client, first, csv_of(ROW.format(n=1))).status_code == 201
    assert post_csv(app_client, second, csv_of(ROW.format(n=1))).status_code == 201
    assert len(listed(app_client, first)) == len(listed(app_client, second)) == 1


@pytest.mark.slow
def test_ten_thousand_rows_import_in_one_request(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """10,000 rows import in one request, all of them (its speed is `doorstep bench import`'s
    figure, not a test's)."""
    rows = [ROW.format(n=i) for i in range(10_000)]
    resp = post_csv(app_client, merchant, csv_of(*rows, newline="\r\n"))
    assert resp.status_code == 201, resp.text[:500]
    assert resp.json()["created"] == 10_000
    page = app_client.get("/v1/orders", params={"limit": 500}, headers=merchant.headers).json()
    assert len(page["data"]) == 500 and page["has_more"]


# --- the parser on its own: any table of valid rows survives any export dialect ---

_text = st.text(
    alphabet=st.characters(
        codec="utf-8", categories=("L", "N", "P", "Zs"), include_characters=",;\"'\n"
    ),
    min_size=1,
    max_size=30,
).map(str.strip).filter(bool)  # fmt: skip

_row = st.fixed_dictionaries(
    {
        "reference": _text,
        "recipient_name": _text,
        "address_line1": _text,
        "city": _text,
        "country": st.sampled_from(["MC", "FR", "FI", "DE"]),
        "lat": st.floats(min_value=-90, max_value=90, allow_nan=False).map(lambda x: round(x, 6)),
        "lon": st.floats(min_value=-180, max_value=180, allow_nan=False).map(lambda x: round(x, 6)),
        "instructions": st.one_of(st.just(""), _text),
        "parcel_count": st.integers(min_value=1, max_value=5),
    }
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(_row, min_size=1, max_size=8, unique_by=lambda r: r["reference"]),
    delimiter=st.sampled_from([",", ";"]),
    newline=st.sampled_from(["\n", "\r\n"]),
    bom=st.booleans(),
    shuffle_columns=st.randoms(use_true_random=False),
)
def test_any_valid_table_round_trips_through_the_parser(
    rows: list[dict[str, Any]], delimiter: str, newline: str, bom: bool, shuffle_columns: Any
) -> None:
    """Rows written with either delimiter, line ending, BOM or column order parse back to the
    same values."""
    columns = list(rows[0])
    shuffle_columns.shuffle(columns)
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=newline)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row[c] for c in columns])
    content = ("\ufeff" if bom else "") + buffer.getvalue()
    parsed = parse_orders_csv(content.encode(), max_rows=100)
    assert parsed.errors == []
    assert [o.row for o in parsed.orders] == list(range(2, len(rows) + 2))
    for row, item in zip(rows, parsed.orders, strict=True):
        order = item.order
        assert order.reference == row["reference"]
        assert order.recipient.name == row["recipient_name"]
        assert order.address.line1 == row["address_line1"]
        assert order.address.city == row["city"]
        assert order.address.country == row["country"]
        assert (order.address.lat, order.address.lon) == (row["lat"], row["lon"])
        assert order.instructions == (row["instructions"] or None)
        assert len(order.parcels) == row["parcel_count"]
    assert set(columns) <= set(COLUMNS)


def test_the_benchmark_file_is_a_valid_import() -> None:
    """`doorstep bench import` generates rows the importer accepts (so the figure is honest)."""
    content = generate_orders_csv(300, day=date(2026, 11, 26), seed=7)
    parsed = parse_orders_csv(content, max_rows=1000)
    assert parsed.errors == [] and len(parsed.orders) == 300
    assert generate_orders_csv(300, day=date(2026, 11, 26), seed=7) == content


def test_service_time_and_times_without_offset_in_the_merchants_timezone(
    app_client: TestClient, merchant: MerchantCtx
) -> None:
    """`service_time_s` is imported; `2026-11-25 14:00` without an offset is 14:00 in Monaco
    (the merchant's timezone, UTC+1 in November); a bad service time names its cell."""
    header = "reference,recipient_name,address_line1,city,country,lat,lon,window_start,window_end,service_time_s"  # noqa: E501
    row = "SO-LOCAL,Ada Lovelace,1 Avenue de la Costa,Monaco,MC,43.7405,7.4263,2026-11-25 14:00,2026-11-25T16:00,420"  # noqa: E501
    resp = post_csv(app_client, merchant, csv_of(row, header=header))
    assert resp.status_code == 201, resp.text
    order = listed(app_client, merchant)[0]
    assert order["service_time_s"] == 420
    assert order["window"]["start"].startswith("2026-11-25T14:00:00+01:00")
    assert order["window"]["end"].startswith("2026-11-25T16:00:00+01:00")
    bad = post_csv(
        app_client, merchant, csv_of(row.replace("SO-LOCAL", "SO-2")[:-3] + "-5", header=header)
    )
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"service_time_s"}
