"""Verbs on orders: :func:`create_order`, :func:`update_order`, :func:`cancel_order`,
:func:`set_status`, :func:`import_orders`.

Each works inside the caller's transaction, loads orders only through the merchant-scoped
:func:`~doorstep.domain.orders.queries.get_order`, refuses bad input with a domain error that
names the field, and appends to the delivery event log. Status changes always go through
:func:`~doorstep.domain.orders.events.change_status` and its transition table. Event data never
carries a full phone number or e-mail address.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Table, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, make_transient_to_detached

from doorstep.clock import Clock
from doorstep.db.base import Base
from doorstep.domain.errors import (
    Actor,
    Conflict,
    FieldError,
    NotEditable,
    NotFound,
    Unprocessable,
)
from doorstep.domain.notifications.outbox import enqueue_for_inserted_events, hold_inserted
from doorstep.domain.orders.csv_import import ImportRejected, RowError
from doorstep.domain.orders.events import append_event, change_status
from doorstep.domain.orders.imports import check_import
from doorstep.domain.orders.location import (
    NEEDS_LOCATION,
    SOURCE_MERCHANT,
    Placement,
    check_point,
    place_address,
    queued,
)
from doorstep.domain.orders.models import DeliveryEvent, Order, Parcel
from doorstep.domain.orders.queries import get_order
from doorstep.domain.orders.schemas import (
    OrderCreate,
    OrderEdit,
    OrderPatch,
    StatusChangeIn,
    WindowIn,
    field_errors,
)
from doorstep.domain.orders.status import EDITABLE, Reason, Status
from doorstep.domain.slots.reservations import confirm, release_for_order
from doorstep.domain.tracking.links import new_tracking_token
from doorstep.geocoding.base import Geocoder, Precision
from doorstep.ids import new_id
from doorstep.routing.travel.straight import haversine_m

ORDER_CREATED = "order.created"
ORDER_UPDATED = "order.updated"
# A reservation is checked for one address; the order may name it a little differently.
RESERVED_ADDRESS_TOLERANCE_M = 250.0
# Clocks of integrators' systems drift; a report this far ahead of ours is still believed.
CLOCK_SKEW = timedelta(minutes=5)

# Editable fields as the API names them → the order column that holds each.
EDITABLE_FIELDS: dict[str, str] = {
    "recipient.name": "recipient_name",
    "recipient.phone": "recipient_phone",
    "recipient.email": "recipient_email",
    "recipient.locale": "recipient_locale",
    "address.line1": "address_line1",
    "address.line2": "address_line2",
    "address.city": "city",
    "address.postal_code": "postal_code",
    "address.country": "country",
    "address.lat": "lat",
    "address.lon": "lon",
    "window.start": "window_start",
    "window.end": "window_end",
    "instructions": "instructions",
    "service_time_s": "service_time_s",
}


# --- privacy of the event log ---


def mask_phone(phone: str | None) -> str | None:
    """``+33612345678`` → ``+33*******78``: enough to tell numbers apart, not to call one."""
    if not phone:
        return phone
    keep_head, keep_tail = 3, 2
    if len(phone) <= keep_head + keep_tail:
        return "*" * len(phone)
    return phone[:keep_head] + "*" * (len(phone) - keep_head - keep_tail) + phone[-keep_tail:]


def mask_email(email: str | None) -> str | None:
    """``ada@example.com`` → ``a***@example.com``."""
    if not email:
        return email
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def _for_event(name: str, value: Any) -> Any:
    if name == "recipient.phone":
        return mask_phone(value)
    if name == "recipient.email":
        return mask_email(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value


def _stored(value: Any) -> Any:
    return value.astimezone(UTC) if isinstance(value, datetime) else value


# --- shared building blocks ---


def _window_errors(window: WindowIn | None, now: datetime) -> list[FieldError]:
    if window is not None and window.end <= now:
        return [FieldError("window.end", "the window has already ended", "window_past")]
    return []


def placement_of(payload: OrderCreate | OrderEdit, geocoder: Geocoder | None) -> Placement:
    """Where the order's address is (see :func:`.location.place_address`)."""
    return place_address(payload.address, geocoder)


def _created_data(values: dict[str, Any], source: str) -> dict[str, Any]:
    data: dict[str, Any] = {"reference": values["reference"], "source": source}
    if values["location_state"] == NEEDS_LOCATION:
        data["location"] = {"state": NEEDS_LOCATION, "reason": values["location_reason"]}
    return data


PIN_DIGITS = 6


def new_delivery_pin() -> str:
    """A delivery PIN: six random digits from :mod:`secrets`."""
    return f"{secrets.randbelow(10**PIN_DIGITS):0{PIN_DIGITS}d}"


def _order_values(
    payload: OrderCreate,
    *,
    order_id: str,
    merchant_id: str,
    now: datetime,
    secret_key: str,
    placement: Placement,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Column values of a new order and its parcels (for one ORM object or a bulk insert)."""
    link = new_tracking_token(secret_key, order_id)
    weights = [p.weight_kg for p in payload.parcels if p.weight_kg is not None]
    order: dict[str, Any] = {
        "id": order_id,
        "merchant_id": merchant_id,
        "reference": payload.reference,
        "status": Status.PENDING.value,
        "reason": None,
        "service_level": payload.level.value,
        "recipient_name": payload.recipient.name,
        "recipient_phone": payload.recipient.phone,
        "recipient_email": payload.recipient.email,
        "recipient_locale": payload.recipient.locale,
        "address_line1": payload.address.line1,
        "address_line2": payload.address.line2,
        "city": payload.address.city,
        "postal_code": payload.address.postal_code,
        "country": payload.address.country,
        **placement.columns(),
        "window_start": payload.window.start if payload.window else None,
        "window_end": payload.window.end if payload.window else None,
        "window_sequence": 0,
        "instructions": payload.instructions,
        "service_time_s": payload.service_time_s,
        "required_skills": [],
        "parcel_count": len(payload.parcels),
        "weight_kg": round(sum(weights), 3),
        "tracking_token_hash": link.token_hash,
        "tracking_nonce": link.nonce,
        "attempts": 0,
        "requires_pin": payload.requires_pin,
        "delivery_pin": new_delivery_pin() if payload.requires_pin else None,
        "delivered_at": None,
        "import_id": None,
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }
    parcels = [
        {
            "id": new_id("par", now),
            "order_id": order_id,
            "merchant_id": merchant_id,
            "position": position,
            "barcode": p.barcode,
            "weight_kg": p.weight_kg,
            "length_cm": p.length_cm,
            "width_cm": p.width_cm,
            "height_cm": p.height_cm,
            "fragile": p.fragile,
            "description": p.description,
        }
        for position, p in enumerate(payload.parcels, start=1)
    ]
    return order, parcels


def _is_reference_clash(exc: IntegrityError) -> bool:
    """Whether ``exc`` is the (merchant, reference) unique constraint, on either database."""
    text = str(exc.orig)
    return "uq_orders_merchant_id_reference" in text or (
        "orders.merchant_id, orders.reference" in text
    )


def _bulk_insert(session: Session, model: type[Base], rows: list[dict[str, Any]]) -> None:
    """One Core ``executemany`` for ``rows`` (psycopg pipelines it; SQLite loops in C).

    Measured on 10,000 orders: ORM bulk inserts split the rows into a batch per run of identical
    ``None`` patterns (thousands of round trips), and ``RETURNING`` batches ("insertmanyvalues")
    were 5x slower on PostgreSQL than this."""
    table = model.__table__
    assert isinstance(table, Table)
    session.execute(insert(table), rows)


def _insert_order(session: Session, values: dict[str, Any], parcels: list[dict[str, Any]]) -> Order:
    """Insert one order and its parcels with two Core statements, and return the order as a
    persistent object of ``session`` without a query (its event, messages and answer read it).

    The unit of work would flush twice per create (the order, to catch a reference clash,
    then its event and messages) and spend about a millisecond of CPU in its bookkeeping
    (ADR 0013); the objects are built from the very values inserted, so they are what a load
    would give."""
    _bulk_insert(session, Order, [values])
    if parcels:
        _bulk_insert(session, Parcel, parcels)
    order = Order(**values)
    order.parcels = [Parcel(**p) for p in parcels]
    for obj in (order, *order.parcels):
        make_transient_to_detached(obj)
    session.add(order)  # detached with a key: attached as loaded, no INSERT
    hold_inserted(session, order)  # its messages, queued at the flush, read it
    return order


def _duplicate_reference(reference: str) -> Conflict:
    return Conflict(
        f"an order with reference {reference!r} already exists",
        errors=[FieldError("reference", "already used by another order", "duplicate")],
    )


# --- verbs ---


def create_order(
    session: Session,
    clock: Clock,
    merchant_id: str,
    payload: OrderCreate,
    *,
    actor: Actor,
    secret_key: str,
    geocoder: Geocoder | None = None,
) -> Order:
    """Create one order (status ``pending``) and log ``order.created``.

    A reference the merchant already used is a 409; a window already over, or coordinates
    that contradict the address, a 422. An address without coordinates is geocoded; one that
    cannot be placed is kept with ``location_state`` ``needs_location`` (see
    :mod:`.location`)."""
    now = clock.now()
    errors = _window_errors(payload.window, now)
    if errors:
        raise Unprocessable("the order is not valid", errors=errors)
    # No look-up first: the (merchant, reference) unique constraint answers the same 409.
    placement = placement_of(payload, geocoder)
    order_id = new_id("ord", now)
    values, parcels = _order_values(
        payload,
        order_id=order_id,
        merchant_id=merchant_id,
        now=now,
        secret_key=secret_key,
        placement=placement,
    )
    try:
        order = _insert_order(session, values, parcels)
    except IntegrityError as exc:
        if _is_reference_clash(exc):  # used before, or by a concurrent request just now
            raise _duplicate_reference(payload.reference) from exc
        raise
    data = _created_data(values, "api")
    if payload.reservation_id is not None:
        data["reservation_id"] = apply_reservation(session, clock, order, payload)
    append_event(
        session,
        clock,
        merchant_id=merchant_id,
        type=ORDER_CREATED,
        actor=actor,
        order=order,
        data=data,
    )
    return order


def apply_reservation(session: Session, clock: Clock, order: Order, payload: OrderCreate) -> str:
    """Confirm the payload's held reservation for ``order``, which takes its window and
    service level (409 once it expired; 422 if the payload names another window, or an
    address more than :data:`RESERVED_ADDRESS_TOLERANCE_M` from the one reserved for)."""
    assert payload.reservation_id is not None
    try:
        res = confirm(session, clock, order.merchant_id, payload.reservation_id, order.id)
    except NotFound as exc:
        raise Unprocessable(
            "no such reservation",
            errors=[FieldError("reservation_id", "no such reservation", "not_found")],
        ) from exc
    if payload.window is not None and (
        payload.window.start != res.window_start or payload.window.end != res.window_end
    ):
        raise Unprocessable(
            "the window differs from the reservation's",
            errors=[FieldError("window", "leave it out or send the reserved window", "mismatch")],
        )
    if (
        res.lat is not None
        and res.lon is not None
        and order.lat is not None
        and order.lon is not None
    ):
        apart = float(haversine_m(res.lat, res.lon, order.lat, order.lon))
        if apart > RESERVED_ADDRESS_TOLERANCE_M:
            raise Unprocessable(
                "the address is not the one the window was reserved for",
                errors=[
                    FieldError(
                        "address", f"{apart:.0f} m from the reserved address", "address_mismatch"
                    )
                ],
            )
    order.window_start, order.window_end = res.window_start, res.window_end
    order.service_level = res.service_level
    return res.id


def _editable_state(order: Order) -> dict[str, Any]:
    """The order's editable fields in the shape of a patch (``None`` values left out)."""
    state: dict[str, Any] = {"service_level": order.service_level}
    for name, column in EDITABLE_FIELDS.items():
        value = getattr(order, column)
        if value is None:
            continue
        if isinstance(value, datetime):
            value = value.isoformat()
        head, _, tail = name.partition(".")
        if tail:
            state.setdefault(head, {})[tail] = value
        else:
            state[name] = value
    return state


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch: objects merge, ``null`` removes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _edited_values(edit: OrderEdit) -> dict[str, Any]:
    window = edit.window
    return {
        "recipient.name": edit.recipient.name,
        "recipient.phone": edit.recipient.phone,
        "recipient.email": edit.recipient.email,
        "recipient.locale": edit.recipient.locale,
        "address.line1": edit.address.line1,
        "address.line2": edit.address.line2,
        "address.city": edit.address.city,
        "address.postal_code": edit.address.postal_code,
        "address.country": edit.address.country,
        "address.lat": edit.address.lat,
        "address.lon": edit.address.lon,
        "window.start": window.start if window else None,
        "window.end": window.end if window else None,
        "instructions": edit.instructions,
        "service_time_s": edit.service_time_s,
    }


def update_order(
    session: Session,
    clock: Clock,
    merchant_id: str,
    order_id: str,
    patch: OrderPatch,
    *,
    actor: Actor,
    geocoder: Geocoder | None = None,
) -> Order:
    """Apply a JSON merge patch to the recipient, address, window, instructions or service time.

    Refused with 409 :class:`NotEditable` once the order has left the editable statuses. The
    patched order is validated as a whole (a national phone number is re-read in a changed
    country). A moved window increments ``window_sequence`` and frees a window it had
    reserved. Logs ``order.updated`` with each changed field old → new (phone and e-mail
    masked); a patch that changes nothing logs nothing. Coordinates set to null are found
    again from the (changed) address; coordinates that contradict the address's country are
    a 422."""
    order = get_order(session, merchant_id, order_id, for_update=True)
    status = Status(order.status)
    if status not in EDITABLE:
        raise NotEditable(f"an order that is {status.value} can no longer be changed")
    merged = merge_patch(_editable_state(order), patch.model_dump(mode="json", exclude_unset=True))
    try:
        edit = OrderEdit.model_validate(merged)
    except ValidationError as exc:
        raise Unprocessable("the changed order is not valid", errors=field_errors(exc)) from exc
    new = _edited_values(edit)
    changes = {
        name: (getattr(order, column), new[name])
        for name, column in EDITABLE_FIELDS.items()
        if getattr(order, column) != new[name]
    }
    placement: Placement | None = None
    if edit.address.lat is None or edit.address.lon is None:
        placement = placement_of(edit, geocoder)  # null coordinates: geocode again
        if placement.state == NEEDS_LOCATION and order.lat is not None:
            # A placed order (maybe on a plan) keeps its place unless the new one is found.
            raise Unprocessable(
                "the changed address could not be placed; send lat and lon",
                errors=[
                    FieldError("address.lat", placement.note or "not found", placement.reason or "")
                ],
            )
        new["address.lat"], new["address.lon"] = placement.lat, placement.lon
        changes = {k: v for k, v in changes.items() if k not in ("address.lat", "address.lon")}
        for name in ("address.lat", "address.lon"):
            if getattr(order, EDITABLE_FIELDS[name]) != new[name]:
                changes[name] = (getattr(order, EDITABLE_FIELDS[name]), new[name])
    elif {"address.lat", "address.lon", "address.country"} & set(changes):
        errors = check_point(edit.address.country, edit.address.lat, edit.address.lon)
        if errors:
            raise Unprocessable("the coordinates contradict the address", errors=errors)
        if {"address.lat", "address.lon"} & set(changes):
            placement = Placement(
                edit.address.lat,
                edit.address.lon,
                precision=Precision.POINT.value,
                source=SOURCE_MERCHANT,
            )
    if placement is not None and not changes and placement.state == order.location_state:
        placement = None  # geocoded again to the same (lack of a) place
    if not changes and placement is None:
        return order
    now = clock.now()
    window_moved = "window.start" in changes or "window.end" in changes
    if window_moved:
        errors = _window_errors(edit.window, now)
        if errors:
            raise Unprocessable("the changed order is not valid", errors=errors)
        order.window_sequence += 1
        release_for_order(session, now, merchant_id, order.id)  # its reserved window is free
    for name, (_, value) in changes.items():
        setattr(order, EDITABLE_FIELDS[name], _stored(value))
    if placement is not None:
        for column, value in placement.columns().items():
            setattr(order, column, value)
    order.updated_at = now
    order.version += 1
    data: dict[str, Any] = {
        "changes": {
            name: {"from": _for_event(name, old), "to": _for_event(name, value)}
            for name, (old, value) in changes.items()
        }
    }
    if placement is not None:
        data["location"] = {
            "state": placement.state,
            "reason": placement.reason,
            "precision": placement.precision,
            "source": placement.source,
        }
    if window_moved:
        data["window_sequence"] = order.window_sequence
    append_event(
        session,
        clock,
        merchant_id=merchant_id,
        type=ORDER_UPDATED,
        actor=actor,
        order=order,
        data=data,
    )
    return order


def cancel_order(
    session: Session,
    clock: Clock,
    merchant_id: str,
    order_id: str,
    *,
    actor: Actor,
    reason: Reason = Reason.MERCHANT_CANCELLED,
    note: str | None = None,
) -> Order:
    """Cancel the order; 409 if its status does not allow it (a delivered order, say). A
    window it had reserved is given back."""
    order = get_order(session, merchant_id, order_id, for_update=True)
    change_status(
        session,
        clock,
        order,
        Status.CANCELLED,
        actor=actor,
        reason=reason,
        data={"note": note} if note else None,
    )
    release_for_order(session, clock.now(), merchant_id, order.id)  # its window is free again
    return order


def set_status(
    session: Session,
    clock: Clock,
    merchant_id: str,
    order_id: str,
    change: StatusChangeIn,
    *,
    actor: Actor,
) -> Order:
    """Move the order to ``change.status`` through the transition table (409 if illegal).

    A report of a delivery or a failed attempt counts as an attempt."""
    now = clock.now()
    if change.occurred_at is not None and change.occurred_at > now + CLOCK_SKEW:
        raise Unprocessable(
            "the change cannot have happened in the future",
            errors=[FieldError("occurred_at", "is in the future", "future")],
        )
    order = get_order(session, merchant_id, order_id, for_update=True)
    change_status(
        session,
        clock,
        order,
        change.status,
        actor=actor,
        reason=change.reason,
        data={"note": change.note} if change.note else None,
        occurred_at=change.occurred_at,
    )
    if change.status in (Status.DELIVERED, Status.DELIVERY_FAILED):
        order.attempts += 1
    return order


@dataclass(frozen=True)
class ImportedOrderRow:
    """What an import answer shows of each created order."""

    id: str
    reference: str
    tracking_nonce: str
    location_state: str = "located"


@dataclass(frozen=True)
class Imported:
    import_id: str
    orders: list[ImportedOrderRow]


def import_orders(
    session: Session,
    clock: Clock,
    merchant_id: str,
    content: bytes,
    *,
    actor: Actor,
    secret_key: str,
    max_rows: int,
    timezone: str = "UTC",
    geocoder: Geocoder | None = None,
) -> Imported:
    """Create every order of a CSV file in the caller's transaction, or none.

    Rows are checked by :func:`~doorstep.domain.orders.imports.check_import` (the preview's dry
    run): the JSON API's rules, a reference repeated in the file or already used. Rows without
    coordinates are then geocoded, or, with a remote (rate-limited) geocoder, queued for the
    worker job ``run_geocode_pending``. Each order stores the import's id, so the import can be
    undone as a whole. Any error raises :class:`ImportRejected` (422) listing every problem by
    spreadsheet row and column. Rows go in with one executemany per table, not one ORM object
    each."""
    checked = check_import(
        session, clock, merchant_id, content, max_rows=max_rows, timezone=timezone
    )
    if checked.errors:
        raise ImportRejected(checked.errors)
    errors: list[RowError] = []
    placements: list[Placement] = []
    later = bool(getattr(geocoder, "remote", False))  # a rate-limited server: the worker
    for item in checked.orders:
        if later and (item.order.address.lat is None or item.order.address.lon is None):
            placements.append(queued())
            continue
        try:
            placements.append(placement_of(item.order, geocoder))
        except Unprocessable as exc:
            errors.extend(RowError(item.row, "lat", e.message, e.code) for e in exc.errors)
    if errors:
        raise ImportRejected(errors)

    now = clock.now()
    import_id = new_id("imp", now)
    order_rows: list[dict[str, Any]] = []
    parcel_rows: list[dict[str, Any]] = []
    event_rows: list[dict[str, Any]] = []
    imported: list[ImportedOrderRow] = []
    for item, placement in zip(checked.orders, placements, strict=True):
        order_id = new_id("ord", now)
        values, parcels = _order_values(
            item.order,
            order_id=order_id,
            merchant_id=merchant_id,
            now=now,
            secret_key=secret_key,
            placement=placement,
        )
        values["import_id"] = import_id
        order_rows.append(values)
        parcel_rows.extend(parcels)
        event_rows.append(
            {
                "id": new_id("evt", now),
                "merchant_id": merchant_id,
                "order_id": order_id,
                "route_id": None,
                "type": ORDER_CREATED,
                "status": Status.PENDING.value,
                "reason": None,
                "actor_type": actor.type,
                "actor_id": actor.id,
                "occurred_at": now,
                "recorded_at": now,
                "data": {**_created_data(values, "csv"), "import": import_id},
            }
        )
        imported.append(
            ImportedOrderRow(
                order_id, values["reference"], values["tracking_nonce"], values["location_state"]
            )
        )
    try:
        for model, rows in (
            (Order, order_rows),
            (Parcel, parcel_rows),
            (DeliveryEvent, event_rows),
        ):
            _bulk_insert(session, model, rows)
        # Bulk inserts bypass the outbox's flush listener: queue their messages explicitly.
        enqueue_for_inserted_events(session, merchant_id, event_rows)
    except IntegrityError as exc:
        if not _is_reference_clash(exc):
            raise
        raise Conflict(
            "another request created orders with some of these references; "
            "nothing was imported, send the file again"
        ) from exc
    return Imported(import_id=import_id, orders=imported)
