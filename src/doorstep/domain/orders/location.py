"""Where an order (or a depot) is: coordinates checked against the address, or found by a
geocoder, or (when neither works) a ``needs_location`` state that keeps the order and says why.

* Coordinates that contradict the address are refused (:func:`check_point`): ``0,0``,
  latitude and longitude swapped, or a point outside the address's country.
* An address without coordinates is geocoded (:func:`locate`). A precise enough answer
  (house, interpolated, street) places it and records its precision and source; an ambiguous
  or coarse answer, or none, keeps the order with ``location_state = "needs_location"``, a
  reason (:class:`LocationReason`), a note and the candidate places. Planning leaves such
  orders out with reason ``needs_location`` until a dispatcher sets coordinates
  (:func:`set_location`), which clears the state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from doorstep.clock import Clock
from doorstep.domain.errors import Actor, FieldError, NotEditable, Unprocessable
from doorstep.domain.orders.events import append_event
from doorstep.domain.orders.models import Order
from doorstep.domain.orders.queries import get_order
from doorstep.domain.orders.status import EDITABLE, Status
from doorstep.geocoding.base import (
    PRECISE,
    AddressQuery,
    Geocoder,
    GeocodeResult,
    GeocoderUnavailable,
    Outcome,
    Precision,
)
from doorstep.geocoding.countries import coordinate_problem

LOCATED = "located"
NEEDS_LOCATION = "needs_location"
SOURCE_MERCHANT = "merchant"
SOURCE_DISPATCHER = "dispatcher"


class LocationReason(StrEnum):
    NOT_FOUND = "address_not_found"
    AMBIGUOUS = "address_ambiguous"
    IMPRECISE = "address_imprecise"
    NO_GEOCODER = "geocoder_unavailable"
    PENDING = "geocoding_pending"  # queued for a rate-limited geocoder (see geocode_pending)


class GeocodingFailed(Unprocessable):
    """A depot's address could not be placed: depots must be on the map."""

    title = "Address not found"
    type_slug = "address-not-found"


@dataclass
class Placement:
    """The location columns of an order, as :func:`locate` decided them."""

    lat: float | None
    lon: float | None
    state: str = LOCATED
    reason: str | None = None
    note: str | None = None
    precision: str | None = None
    source: str | None = None
    candidates: list[dict[str, Any]] = field(default_factory=list)

    def columns(self) -> dict[str, Any]:
        return {
            "lat": self.lat,
            "lon": self.lon,
            "location_state": self.state,
            "location_reason": self.reason,
            "location_note": self.note[:300] if self.note else None,
            "location_precision": self.precision,
            "location_source": self.source,
            "location_candidates": self.candidates or None,
        }


class CandidateOut(BaseModel):
    lat: float
    lon: float
    precision: Precision
    label: str
    source: str


class LocationOut(BaseModel):
    """How the order's place was found. ``state`` ``needs_location``: left out of planning
    until coordinates are set (``POST /v1/orders/{id}/location``); ``reason`` says why and
    ``candidates`` lists the places the address may be."""

    state: str = Field(description="located | needs_location")
    reason: LocationReason | None
    note: str | None
    precision: Precision | None = Field(
        description="point (given or picked), house, interpolated, street, postcode, city"
    )
    source: str | None = Field(description="merchant, dispatcher, osm_extract, nominatim, ...")
    candidates: list[CandidateOut]

    @classmethod
    def of(cls, order: Order) -> LocationOut:
        return cls(
            state=order.location_state,
            reason=LocationReason(order.location_reason) if order.location_reason else None,
            note=order.location_note,
            precision=Precision(order.location_precision) if order.location_precision else None,
            source=order.location_source,
            candidates=[CandidateOut.model_validate(c) for c in order.location_candidates or []],
        )


class SetLocationIn(BaseModel):
    """Where the order really is (WGS 84), e.g. picked on the console's map."""

    model_config = ConfigDict(extra="forbid")

    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False)


def check_point(country: str, lat: float, lon: float, prefix: str = "address") -> list[FieldError]:
    """Field errors for coordinates that contradict the address's country (empty if none)."""
    found = coordinate_problem(country, lat, lon)
    if found is None:
        return []
    problem, message = found
    return [FieldError(f"{prefix}.lat", message, problem.value)]


def locate(
    geocoder: Geocoder | None,
    *,
    line1: str,
    city: str,
    country: str,
    postal_code: str | None = None,
    line2: str | None = None,
    lat: float | None = None,
    lon: float | None = None,
    prefix: str = "address",
) -> Placement:
    """Where the address is: its own coordinates once checked (a contradiction is a 422
    :class:`Unprocessable`), else what ``geocoder`` finds, else ``needs_location``."""
    if lat is not None and lon is not None:
        errors = check_point(country, lat, lon, prefix)
        if errors:
            raise Unprocessable("the coordinates contradict the address", errors=errors)
        return Placement(lat, lon, precision=Precision.POINT.value, source=SOURCE_MERCHANT)
    if geocoder is None:
        return Placement(
            None, None, NEEDS_LOCATION, LocationReason.NO_GEOCODER, "no geocoder configured"
        )
    query = AddressQuery(line1, city, country, postal_code, line2)
    try:
        result = geocoder.geocode(query)
    except GeocoderUnavailable as exc:
        return Placement(None, None, NEEDS_LOCATION, LocationReason.NO_GEOCODER, str(exc))
    return _placement_of(result, geocoder.name)


def _placement_of(result: GeocodeResult, source: str) -> Placement:
    """The order's place from a geocoder's answer: located when precise enough, else
    ``needs_location`` with the reason and the candidates."""
    candidates = [c.as_json() for c in result.candidates]
    best = result.best
    if best is not None and best.precision in PRECISE:
        return Placement(
            best.lat,
            best.lon,
            note=result.detail or None,
            precision=best.precision.value,
            source=best.source,
        )
    if result.outcome is Outcome.AMBIGUOUS:
        reason = LocationReason.AMBIGUOUS
    elif best is not None:
        reason = LocationReason.IMPRECISE
    else:
        reason = LocationReason.NOT_FOUND
    return Placement(
        None,
        None,
        NEEDS_LOCATION,
        reason.value,
        result.detail or None,
        source=source,
        candidates=candidates,
    )


REASON_TEXT = {
    LocationReason.NOT_FOUND.value: "the address was not found on the map",
    LocationReason.AMBIGUOUS.value: "the address matches several places",
    LocationReason.IMPRECISE.value: "the address was found only roughly",
    LocationReason.NO_GEOCODER.value: "the address could not be geocoded",
    LocationReason.PENDING.value: "the address is waiting for the geocoder",
}


def needs_location_detail(order: Order) -> str:
    """One sentence for the dispatcher: why the order has no place, and what to do."""
    why = REASON_TEXT.get(order.location_reason or "", "the address has no coordinates")
    note = f" ({order.location_note})" if order.location_note else ""
    picks = len(order.location_candidates or [])
    hint = f"pick one of {picks} candidates or a spot" if picks else "pick its spot"
    return f"{why}{note}; {hint} on the map to plan it"


def point_of(order: Order) -> tuple[float, float]:
    """The order's coordinates; an order that needs a location has none (a 422)."""
    if order.lat is None or order.lon is None:
        raise Unprocessable(
            f"order {order.reference} has no location yet",
            errors=[FieldError("address.lat", needs_location_detail(order), NEEDS_LOCATION)],
        )
    return order.lat, order.lon


def queued() -> Placement:
    """The place of an address left for :func:`geocode_pending` (a rate-limited geocoder
    would hold a whole CSV import for minutes)."""
    return Placement(
        None, None, NEEDS_LOCATION, LocationReason.PENDING.value, "queued for the geocoder"
    )


def queued_addresses(session: Session, *, limit: int = 20) -> list[tuple[str, AddressQuery]]:
    """Up to ``limit`` orders queued for the geocoder (any merchant, oldest first), as
    (order id, address)."""
    rows = session.execute(
        select(
            Order.id,
            Order.address_line1,
            Order.city,
            Order.country,
            Order.postal_code,
            Order.address_line2,
        )
        .where(
            Order.location_state == NEEDS_LOCATION,
            Order.location_reason == LocationReason.PENDING.value,
        )
        .order_by(Order.created_at, Order.id)
        .limit(limit)
    ).all()
    return [(r[0], AddressQuery(r[1], r[2], r[3], r[4], r[5])) for r in rows]


def apply_geocode(
    session: Session, clock: Clock, order_id: str, result: GeocodeResult, source: str
) -> bool:
    """Place a queued order by the geocoder's answer (located, or ``needs_location`` with the
    geocoder's reason) and log ``order.updated``; False if it is no longer queued."""
    order = session.scalars(
        select(Order)
        .where(Order.id == order_id, Order.location_reason == LocationReason.PENDING.value)
        .with_for_update()
    ).one_or_none()
    if order is None:
        return False
    placement = _placement_of(result, source)
    for column, value in placement.columns().items():
        setattr(order, column, value)
    order.updated_at = clock.now()
    order.version += 1
    append_event(
        session,
        clock,
        merchant_id=order.merchant_id,
        type="order.updated",
        actor=Actor.system(),
        order=order,
        data={
            "changes": {
                "address.lat": {"from": None, "to": order.lat},
                "address.lon": {"from": None, "to": order.lon},
            },
            "location": {
                "state": placement.state,
                "reason": placement.reason,
                "precision": placement.precision,
                "source": placement.source,
            },
        },
    )
    return True


class AddressLike(Protocol):
    """An address as the order and depot schemas carry it."""

    @property
    def line1(self) -> str: ...
    @property
    def city(self) -> str: ...
    @property
    def country(self) -> str: ...
    @property
    def postal_code(self) -> str | None: ...
    @property
    def lat(self) -> float | None: ...
    @property
    def lon(self) -> float | None: ...


def place_address(address: AddressLike, geocoder: Geocoder | None) -> Placement:
    """Where ``address`` is: its coordinates checked (a contradiction raises a 422), or
    geocoded, or ``needs_location``."""
    return locate(
        geocoder,
        line1=address.line1,
        line2=getattr(address, "line2", None),
        city=address.city,
        country=address.country,
        postal_code=address.postal_code,
        lat=address.lat,
        lon=address.lon,
    )


def place_depot(geocoder: Geocoder | None, address: AddressLike) -> tuple[float, float]:
    """A depot's coordinates: its own (checked) or geocoded; a depot that cannot be placed
    is refused (422) with the candidates in the message."""
    placement = place_address(address, geocoder)
    if placement.lat is None or placement.lon is None:
        options = "; ".join(
            f"{c['label']} ({c['lat']:.6f}, {c['lon']:.6f})" for c in placement.candidates
        )
        message = (placement.note or "the address was not found") + (
            f"; candidates: {options}" if options else ""
        )
        raise GeocodingFailed(
            "the depot's address could not be placed; send lat and lon",
            errors=[FieldError("address.lat", message, placement.reason or "not_found")],
        )
    return placement.lat, placement.lon


def set_location(
    session: Session,
    clock: Clock,
    merchant_id: str,
    order_id: str,
    *,
    lat: float,
    lon: float,
    actor: Actor,
) -> Order:
    """A dispatcher places the order at (lat, lon): checked against the address's country,
    precision ``point``, source ``dispatcher``; clears ``needs_location``. Logs
    ``order.updated`` with the changed coordinates and location state."""
    order = get_order(session, merchant_id, order_id, for_update=True)
    status = Status(order.status)
    if status not in EDITABLE:
        raise NotEditable(f"an order that is {status.value} can no longer be changed")
    errors = check_point(order.country, lat, lon)
    if errors:
        raise Unprocessable("the coordinates contradict the address", errors=errors)
    before = {
        "address.lat": order.lat,
        "address.lon": order.lon,
        "location.state": order.location_state,
        "location.precision": order.location_precision,
        "location.source": order.location_source,
    }
    placement = Placement(lat, lon, precision=Precision.POINT.value, source=SOURCE_DISPATCHER)
    for column, value in placement.columns().items():
        setattr(order, column, value)
    after = {
        "address.lat": lat,
        "address.lon": lon,
        "location.state": LOCATED,
        "location.precision": placement.precision,
        "location.source": placement.source,
    }
    changes = {k: {"from": before[k], "to": v} for k, v in after.items() if before[k] != v}
    if not changes:
        return order
    order.updated_at = clock.now()
    order.version += 1
    append_event(
        session,
        clock,
        merchant_id=merchant_id,
        type="order.updated",
        actor=actor,
        order=order,
        data={"changes": changes},
    )
    return order
