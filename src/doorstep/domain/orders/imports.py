"""CSV imports as a whole: :func:`check_import` (the dry run a preview shows), and
:func:`undo_import`, which cancels the orders of one import that have not yet left.

Every import gets an id (``imp_...``) stored on each order it created (``Order.import_id``)
and in the data of their ``order.created`` events. :func:`~doorstep.domain.orders.service.
import_orders` writes only after :func:`check_import` found no error, so what a preview shows
is exactly what the import would refuse or create.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from doorstep.clock import Clock
from doorstep.domain.errors import Actor, NotFound
from doorstep.domain.orders.csv_import import CsvOrder, RowError, parse_orders_csv
from doorstep.domain.orders.events import change_status
from doorstep.domain.orders.models import Order
from doorstep.domain.orders.queries import existing_references
from doorstep.domain.orders.status import Reason, Status
from doorstep.domain.slots.reservations import release_for_order

# Orders in these statuses have not left the depot: undoing their import cancels them.
UNDOABLE: frozenset[Status] = frozenset({Status.PENDING, Status.SCHEDULED, Status.ON_HOLD})


@dataclass
class CheckedImport:
    """A file read and checked against the merchant's orders, nothing written: the valid
    rows, and every error by spreadsheet row and column (the import goes ahead only without)."""

    orders: list[CsvOrder] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def error_rows(self) -> int:
        return len({e.row for e in self.errors})


def check_import(
    session: Session,
    clock: Clock,
    merchant_id: str,
    content: bytes,
    *,
    max_rows: int,
    timezone: str = "UTC",
) -> CheckedImport:
    """Validate a CSV file as an import would, without writing: the JSON API's rules per row, a
    reference repeated in the file or already used by the merchant, a window already over.

    Raises :class:`~doorstep.domain.orders.csv_import.ImportRejected` only for a file that is
    not UTF-8 text (nothing of it can be shown)."""
    parsed = parse_orders_csv(content, max_rows=max_rows, timezone=timezone)
    checked = CheckedImport(errors=list(parsed.errors))
    now = clock.now()
    taken = existing_references(session, merchant_id, (o.order.reference for o in parsed.orders))
    for item in parsed.orders:
        row_errors = []
        if item.order.reference in taken:
            row_errors.append(
                RowError(item.row, "reference", "an order with this reference exists", "duplicate")
            )
        if window_over(item.order.window.end if item.order.window else None, now):
            row_errors.append(
                RowError(item.row, "window_end", "the window has already ended", "window_past")
            )
        if row_errors:
            checked.errors.extend(row_errors)
        else:
            checked.orders.append(item)
    checked.errors.sort(key=lambda e: e.row)
    return checked


def window_over(end: datetime | None, now: datetime) -> bool:
    """Whether a window ending at ``end`` is already over at ``now``."""
    return end is not None and end <= now


@dataclass(frozen=True)
class UndoneImport:
    """What undoing an import did: the orders it cancelled, and those it left alone because
    they had already left (or ended) with their status."""

    import_id: str
    cancelled: list[str]
    kept: dict[str, str]  # order id -> status


def import_orders_of(
    session: Session, merchant_id: str, import_id: str, *, lock: bool = True
) -> list[Order]:
    """The merchant's orders that import ``import_id`` created, by reference (locked for
    update unless ``lock`` is false); NotFound when there are none (an unknown id, or another
    merchant's import)."""
    query = (
        select(Order)
        .where(Order.merchant_id == merchant_id, Order.import_id == import_id)
        .order_by(Order.reference)
    )
    orders = list(session.scalars(query.with_for_update() if lock else query))
    if not orders:
        raise NotFound(f"no import {import_id!r}")
    return orders


def undo_import(
    session: Session, clock: Clock, merchant_id: str, import_id: str, *, actor: Actor
) -> UndoneImport:
    """Cancel every order of the import that has not left yet (``pending``, ``scheduled``,
    ``on_hold``) through the transition table, with the reason ``merchant_cancelled`` and the
    import named in each ``order.cancelled`` event; the others keep their status. Undoing an
    import twice cancels nothing more. 404 for an unknown or another merchant's import."""
    orders = import_orders_of(session, merchant_id, import_id)
    cancelled: list[str] = []
    kept: dict[str, str] = {}
    now = clock.now()
    for order in orders:
        status = Status(order.status)
        if status is Status.CANCELLED:
            continue
        if status not in UNDOABLE:
            kept[order.id] = status.value
            continue
        change_status(
            session,
            clock,
            order,
            Status.CANCELLED,
            actor=actor,
            reason=Reason.MERCHANT_CANCELLED,
            data={"import": import_id, "note": "import undone"},
        )
        release_for_order(session, now, merchant_id, order.id)
        cancelled.append(order.id)
    return UndoneImport(import_id=import_id, cancelled=cancelled, kept=kept)
