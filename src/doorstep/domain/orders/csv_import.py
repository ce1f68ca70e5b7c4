"""Reading orders from a CSV file as shops export them from spreadsheets.

UTF-8 with or without a BOM, comma, semicolon or tab delimited (sniffed from the header row),
any line endings, quoted fields, blank optional cells, header names compared without case,
spaces or punctuation (``Recipient Name`` is ``recipient_name``), decimal commas in numbers.

Each row becomes the same :class:`~doorstep.domain.orders.schemas.OrderCreate` the JSON API
validates, so both doors share one set of rules. Errors name the row as a spreadsheet shows it
(the header is row 1) and the column, so a user can fix the file and send it again.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from doorstep.domain.errors import FieldError, Unprocessable
from doorstep.domain.orders.schemas import MAX_PARCELS, OrderCreate

COLUMNS: tuple[str, ...] = (
    "reference",
    "recipient_name",
    "recipient_phone",
    "recipient_email",
    "recipient_locale",
    "address_line1",
    "city",
    "postal_code",
    "country",
    "lat",
    "lon",
    "window_start",
    "window_end",
    "service_level",
    "parcel_count",
    "weight_kg",
    "instructions",
    "service_time_s",
)
REQUIRED: frozenset[str] = frozenset(
    {"reference", "recipient_name", "address_line1", "city", "country"}
)
MAX_REPORTED_ERRORS = 1000
_DECIMAL_COMMA = re.compile(r"^[+-]?\d+,\d+$")
_DELIMITERS = (",", ";", "\t")


def _key(name: str) -> str:
    """How header names are compared: lower case, letters and digits only."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


_COLUMN_BY_KEY = {_key(c): c for c in COLUMNS}


@dataclass(frozen=True, order=True)
class RowError:
    """One problem in one cell: ``row`` as a spreadsheet numbers it, ``field`` a column name."""

    row: int
    field: str
    message: str
    code: str = "invalid"


class ImportRejected(Unprocessable):
    """The file has errors; nothing was imported. ``row_errors`` lists them all."""

    title = "Import rejected"
    type_slug = "import-rejected"

    def __init__(self, row_errors: list[RowError]) -> None:
        ordered = sorted(set(row_errors), key=lambda e: (e.row, _column_rank(e.field)))
        rows = len({e.row for e in ordered})
        super().__init__(
            f"{len(ordered)} problem(s) in {rows} row(s); nothing was imported",
            errors=[
                FieldError(f"rows[{e.row}].{e.field}", e.message, e.code)
                for e in ordered[:MAX_REPORTED_ERRORS]
            ],
        )
        self.row_errors = ordered


def _column_rank(name: str) -> int:
    return COLUMNS.index(name) if name in COLUMNS else len(COLUMNS)


@dataclass(frozen=True)
class CsvOrder:
    """A valid row and where it came from."""

    row: int
    order: OrderCreate


@dataclass
class ParsedImport:
    """The valid rows and the errors of the others (an import goes ahead only without errors)."""

    orders: list[CsvOrder] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def decode(content: bytes) -> str:
    """The text of an UTF-8 file, BOM removed; :class:`ImportRejected` if it is not UTF-8."""
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = content[: exc.start].count(b"\n") + 1
        raise ImportRejected(
            [
                RowError(
                    line,
                    "file",
                    "the file is not UTF-8 text; save it as 'CSV UTF-8' from your spreadsheet",
                    "encoding",
                )
            ]
        ) from exc


def sniff_delimiter(text: str) -> str:
    """The delimiter the header row uses most (outside quotes); comma when in doubt."""
    header = next(iter(text.splitlines()), "")
    unquoted = re.sub(r'"[^"]*"', "", header)
    counts = {d: unquoted.count(d) for d in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def read_records(text: str) -> Iterator[tuple[int, list[str]]]:
    """Every record with its spreadsheet row number (a quoted line break stays in one row)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sniff_delimiter(text))
    yield from enumerate(reader, start=1)


def _header(cells: list[str]) -> tuple[list[str | None], list[RowError]]:
    columns: list[str | None] = []
    errors: list[RowError] = []
    seen: set[str] = set()
    for raw in cells:
        name = raw.strip()
        column = _COLUMN_BY_KEY.get(_key(name))
        if not name:
            columns.append(None)
            continue
        if column is None:
            errors.append(
                RowError(1, name, f"unknown column; expected {', '.join(COLUMNS)}", "unknown")
            )
        elif column in seen:
            errors.append(RowError(1, column, "column appears twice", "duplicate_column"))
        else:
            seen.add(column)
        columns.append(column)
    for column in COLUMNS:
        if column in REQUIRED and column not in seen:
            errors.append(RowError(1, column, "required column is missing", "missing_column"))
    return columns, errors


def _number(value: str) -> str:
    return value.replace(",", ".") if _DECIMAL_COMMA.match(value) else value


def _local_time(value: str, tz: ZoneInfo) -> str:
    """``value`` with ``tz``'s offset when it has none (``2026-11-25 09:00`` as a spreadsheet
    writes it); anything else as written, for the order's validation to judge."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    if parsed.tzinfo is not None:
        return value
    return parsed.replace(tzinfo=tz).isoformat()


def _payload(
    cells: dict[str, str], row: int, errors: list[RowError], tz: ZoneInfo
) -> dict[str, Any]:
    """The JSON-API shape of one row (blank cells left out so defaults apply); times without an
    offset are read in ``tz`` (the merchant's timezone)."""

    def put(target: dict[str, Any], key: str, column: str, number: bool = False) -> None:
        value = cells.get(column)
        if value:
            target[key] = _number(value) if number else value

    data: dict[str, Any] = {}
    put(data, "reference", "reference")
    recipient: dict[str, Any] = {}
    put(recipient, "name", "recipient_name")
    put(recipient, "phone", "recipient_phone")
    put(recipient, "email", "recipient_email")
    put(recipient, "locale", "recipient_locale")
    data["recipient"] = recipient
    address: dict[str, Any] = {}
    put(address, "line1", "address_line1")
    put(address, "city", "city")
    put(address, "postal_code", "postal_code")
    put(address, "country", "country")
    put(address, "lat", "lat", number=True)
    put(address, "lon", "lon", number=True)
    data["address"] = address
    if cells.get("window_start") or cells.get("window_end"):
        window: dict[str, Any] = {}
        put(window, "start", "window_start")
        put(window, "end", "window_end")
        data["window"] = {k: _local_time(v, tz) for k, v in window.items()}
    put(data, "service_level", "service_level")
    put(data, "instructions", "instructions")
    put(data, "service_time_s", "service_time_s")

    count = 1
    if cells.get("parcel_count"):
        try:
            count = int(cells["parcel_count"])
        except ValueError:
            errors.append(RowError(row, "parcel_count", "must be a whole number", "int_parsing"))
            count = 1
        else:
            if not 1 <= count <= MAX_PARCELS:
                errors.append(
                    RowError(row, "parcel_count", f"must be 1 to {MAX_PARCELS}", "out_of_range")
                )
                count = 1
    parcel: dict[str, Any] = {}
    if cells.get("weight_kg"):
        try:
            total = float(_number(cells["weight_kg"]))
        except ValueError:
            errors.append(RowError(row, "weight_kg", "must be a number", "float_parsing"))
        else:
            # The column is the order's total weight, shared evenly between its parcels.
            parcel["weight_kg"] = round(total / count, 3)
    data["parcels"] = [parcel] * count
    return data


def _column_of(loc: tuple[int | str, ...]) -> str:
    head = str(loc[0]) if loc else "row"
    sub = str(loc[1]) if len(loc) > 1 else None
    if head == "recipient":
        return f"recipient_{sub}" if sub else "recipient_name"
    if head == "address":
        return {"line1": "address_line1", None: "address_line1"}.get(sub, sub or head)
    if head == "window":
        return f"window_{sub}" if sub else "window_start"
    if head == "parcels":
        return "weight_kg" if len(loc) > 2 else "parcel_count"
    return head


def _message(err: Any) -> tuple[str, str]:
    kind = str(err["type"])
    if kind == "missing":
        return "required, but the cell is empty", kind
    return str(err["msg"]).removeprefix("Value error, "), kind


def parse_orders_csv(content: bytes, *, max_rows: int, timezone: str = "UTC") -> ParsedImport:
    """Validate every row of ``content``; the caller imports only if ``errors`` is empty.
    Window times without an offset are read in ``timezone`` (the merchant's)."""
    tz = ZoneInfo(timezone)
    text = decode(content)
    result = ParsedImport()
    records = read_records(text)
    first = next(records, None)
    if first is None or not any(cell.strip() for cell in first[1]):
        result.errors.append(RowError(1, "file", "the file is empty; expected a header row"))
        return result
    columns, header_errors = _header(first[1])
    if header_errors:
        result.errors.extend(header_errors)
        return result

    first_row_of: dict[str, int] = {}
    count = 0
    for row, record in records:
        if not any(cell.strip() for cell in record):
            continue  # blank spreadsheet rows
        count += 1
        if count > max_rows:
            result.errors.append(
                RowError(row, "file", f"more than {max_rows} rows; split the file", "too_many")
            )
            break
        extra = [c for c in record[len(columns) :] if c.strip()]
        if extra:
            result.errors.append(
                RowError(
                    row,
                    "row",
                    f"has {len(record)} cells but the header has {len(columns)}",
                    "extra_cells",
                )
            )
            continue
        cells = {
            column: cell.strip()
            for column, cell in zip(columns, record, strict=False)
            if column is not None
        }
        row_errors: list[RowError] = []
        payload = _payload(cells, row, row_errors, tz)
        order: OrderCreate | None = None
        try:
            order = OrderCreate.model_validate(payload)
        except ValidationError as exc:
            for err in exc.errors(include_url=False, include_input=False):
                message, kind = _message(err)
                row_errors.append(RowError(row, _column_of(tuple(err["loc"])), message, kind))
        reference = cells.get("reference")
        if reference:
            if reference in first_row_of:
                row_errors.append(
                    RowError(
                        row,
                        "reference",
                        f"duplicate of row {first_row_of[reference]}",
                        "duplicate",
                    )
                )
            else:
                first_row_of[reference] = row
        if order is not None and not row_errors:
            result.orders.append(CsvOrder(row, order))
        elif row_errors:
            # Only the first message per cell (a weight error repeats for every parcel).
            seen: set[str] = set()
            for row_error in row_errors:
                if row_error.field not in seen:
                    seen.add(row_error.field)
                    result.errors.append(row_error)
    if not result.errors and not result.orders:
        result.errors.append(RowError(2, "file", "the file has a header but no orders", "empty"))
    return result
